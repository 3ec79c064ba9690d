package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cdc2s3/cdc2s3/snapshot"
)

// distParameters are the test stack's parameters with the distributed
// load on.
func distParameters(kms string) map[string]any {
	p := stackParameters("lake")
	p["DistributedLoad"] = "true"
	p["KmsKeyArn"] = kms
	return p
}

// TestStateMachineOff: without DistributedLoad the stack has no state
// machine, no load task and no role for them, and the service runs its task.
func TestStateMachineOff(t *testing.T) {
	_, raw := openStack(t, stackParameters(""))
	for name := range raw["Resources"].(map[string]any) {
		if strings.HasPrefix(name, "Load") {
			t.Errorf("%s exists with DistributedLoad false", name)
		}
	}
}

// TestStateMachineShape checks what the distributed load's protocol needs
// of the state machine: the coordinator task (--plan --for-run with the
// execution's name as plan id) in one branch of a Parallel, in the other
// a wait for the plan's unit list and a Distributed Map reading it from
// where snapshot.UnitsKey puts it, one worker task (--unit, --plan-id)
// per item with retries; then the service started; and the service kept
// at 0 tasks until then.
func TestStateMachineShape(t *testing.T) {
	tmpl, raw := openStack(t, distParameters(""))
	def := stateMachineDefinition(t, raw)
	var m struct {
		StartAt string
		States  map[string]map[string]any
	}
	if err := json.Unmarshal(def, &m); err != nil {
		t.Fatal(err)
	}
	load := m.States["Load"]
	if load["Type"] != "Parallel" || load["Next"] != "StartDaemon" {
		t.Fatalf("Load: %v", load)
	}
	branches := load["Branches"].([]any)
	coord := branches[0].(map[string]any)["States"].(map[string]any)["Coordinator"].(map[string]any)
	params := coord["Parameters"].(map[string]any)
	if coord["Resource"] != "arn:aws:states:::ecs:runTask.sync" || params["TaskDefinition"] != "ref:LoadCoordinatorTaskDefinition" || coord["Retry"] != nil {
		t.Errorf("coordinator: %v", coord)
	}
	if cmd := containerOverride(params)["Command.$"]; cmd != "States.Array('snapshot', '--plan', '--for-run', '--plan-id', $$.Execution.Name)" {
		t.Errorf("coordinator command %v", cmd)
	}
	wait := branches[1].(map[string]any)["States"].(map[string]any)
	units := wait["Units"].(map[string]any)
	reader := units["ItemReader"].(map[string]any)["Parameters"].(map[string]any)
	wantKey := "States.Format('cdc2s3/app/" + snapshot.UnitsKey("{}") + "', $$.Execution.Name)"
	if reader["Key.$"] != wantKey || wait["WaitForPlan"].(map[string]any)["Parameters"].(map[string]any)["Key.$"] != wantKey {
		t.Errorf("the Map reads %v, the wait looks for %v; the coordinator writes %s", reader["Key.$"], wait["WaitForPlan"], wantKey)
	}
	proc := units["ItemProcessor"].(map[string]any)
	if proc["ProcessorConfig"].(map[string]any)["Mode"] != "DISTRIBUTED" || units["MaxConcurrencyPath"] != "$.settings.concurrency" {
		t.Errorf("Units: %v", units)
	}
	unit := proc["States"].(map[string]any)["Unit"].(map[string]any)
	uparams := unit["Parameters"].(map[string]any)
	if uparams["TaskDefinition"] != "ref:LoadWorkerTaskDefinition" || unit["Retry"] == nil || unit["OutputPath"] != nil {
		t.Errorf("Unit: %v", unit)
	}
	if cmd := containerOverride(uparams)["Command.$"]; cmd != "States.Array('snapshot', '--unit', States.Format('{}', $.unit), '--plan-id', $.plan)" {
		t.Errorf("worker command %v", cmd)
	}
	subnets := uparams["NetworkConfiguration"].(map[string]any)["AwsvpcConfiguration"].(map[string]any)["Subnets"]
	if fmt.Sprint(subnets) != "[subnet-0a subnet-0b]" {
		t.Errorf("worker subnets %v", subnets)
	}
	if c := m.States["Settings"]["Parameters"].(map[string]any)["concurrency.$"]; c != "States.StringToJson('10')" {
		t.Errorf("concurrency %v", c)
	}
	svc, err := tmpl.GetECSServiceWithName("Service")
	if err != nil {
		t.Fatal(err)
	}
	if svc.DesiredCount == nil || *svc.DesiredCount != 0 {
		t.Errorf("service desired count %v: the daemon must wait for the distributed load", svc.DesiredCount)
	}
	start := m.States["StartDaemon"]["Parameters"].(map[string]any)
	if start["Service"] != "ref:Service" || start["DesiredCount"] != 1.0 {
		t.Errorf("StartDaemon: %v", start)
	}
}

func containerOverride(params map[string]any) map[string]any {
	return params["Overrides"].(map[string]any)["ContainerOverrides"].([]any)[0].(map[string]any)
}

// TestStateMachineRole checks the state machine's least privilege: RunTask
// of exactly the two load task definitions in the stack's cluster, their
// two roles to pass (to ECS tasks only), the plan's objects to read, its
// own executions, the service to start; nothing else, no wildcard action.
// With KmsKeyArn, Decrypt on that key (the plan is encrypted with it).
func TestStateMachineRole(t *testing.T) {
	for _, kms := range []string{"", testKey} {
		_, raw := openStack(t, distParameters(kms))
		sts := roleStatements(t, raw, "LoadStateMachineRole")
		seen := map[string]bool{}
		for _, s := range sts {
			res := strs(s.Resource)
			for _, a := range strs(s.Action) {
				seen[a] = true
				if want, ok := stateMachineGrants[a]; !ok {
					t.Errorf("the state machine may %s (on %v): not needed", a, res)
				} else if !want(res, s.Condition) {
					t.Errorf("%s on %v (condition %v): not scoped as it must be", a, res, s.Condition)
				}
			}
		}
		for a := range stateMachineGrants {
			if !seen[a] && (a != "kms:Decrypt" || kms != "") {
				t.Errorf("KmsKeyArn %q: %s is not granted", kms, a)
			}
		}
		if seen["kms:Decrypt"] != (kms != "") {
			t.Errorf("KmsKeyArn %q: kms:Decrypt granted %v", kms, seen["kms:Decrypt"])
		}
	}
}

// stateMachineGrants is what the state machine's role may do, each with
// the check of its resources (and condition).
var stateMachineGrants = map[string]func(res []string, cond map[string]map[string]any) bool{
	"ecs:RunTask": func(res []string, cond map[string]map[string]any) bool {
		return slices.Equal(res, []string{"ref:LoadCoordinatorTaskDefinition", "ref:LoadWorkerTaskDefinition"}) &&
			strings.HasSuffix(fmt.Sprint(cond["ArnEquals"]["ecs:cluster"]), ":cluster/ref:Cluster")
	},
	"ecs:DescribeTasks": taskOfCluster,
	"ecs:StopTask":      taskOfCluster,
	"iam:PassRole": func(res []string, cond map[string]map[string]any) bool {
		return slices.Equal(res, []string{"getatt:TaskRole.Arn", "getatt:ExecutionRole.Arn"}) &&
			cond["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"
	},
	"events:PutTargets":   ecsEventsRule,
	"events:PutRule":      ecsEventsRule,
	"events:DescribeRule": ecsEventsRule,
	"s3:GetObject": func(res []string, _ map[string]map[string]any) bool {
		return slices.Equal(res, []string{"arn:aws:s3:::lake-bucket/cdc2s3/app/_cdc2s3/load/*"})
	},
	"s3:ListBucket": func(res []string, cond map[string]map[string]any) bool {
		return slices.Equal(res, []string{"arn:aws:s3:::lake-bucket"}) &&
			slices.Equal(strs(cond["StringLike"]["s3:prefix"]), []string{"cdc2s3/app/_cdc2s3/load/*"})
	},
	"states:StartExecution": func(res []string, _ map[string]map[string]any) bool {
		return len(res) == 1 && strings.Contains(res[0], ":stateMachine:") && strings.HasSuffix(res[0], "-load")
	},
	"states:DescribeExecution": executionOfMachine,
	"states:StopExecution":     executionOfMachine,
	"ecs:UpdateService": func(res []string, _ map[string]map[string]any) bool {
		return slices.Equal(res, []string{"ref:Service"})
	},
	"kms:Decrypt": func(res []string, _ map[string]map[string]any) bool {
		return slices.Equal(res, []string{testKey})
	},
}

func taskOfCluster(res []string, _ map[string]map[string]any) bool {
	return len(res) == 1 && strings.HasSuffix(res[0], ":task/ref:Cluster/*")
}

func ecsEventsRule(res []string, _ map[string]map[string]any) bool {
	return len(res) == 1 && strings.HasSuffix(res[0], ":rule/StepFunctionsGetEventsForECSTaskRule")
}

func executionOfMachine(res []string, _ map[string]map[string]any) bool {
	return len(res) == 1 && strings.Contains(res[0], ":execution:") && strings.HasSuffix(res[0], "-load/*")
}

// roleStatements returns the statements of a role's inline policies.
func roleStatements(t *testing.T, raw map[string]any, role string) []statement {
	t.Helper()
	props := raw["Resources"].(map[string]any)[role].(map[string]any)["Properties"].(map[string]any)
	var out []statement
	for _, p := range props["Policies"].([]any) {
		if p == nil {
			continue
		}
		b, _ := json.Marshal(p.(map[string]any)["PolicyDocument"].(map[string]any)["Statement"])
		var sts []statement
		if err := json.Unmarshal(b, &sts); err != nil {
			t.Fatal(err)
		}
		out = append(out, sts...)
	}
	return out
}

// TestStateMachineASL validates the definition, with its substitutions
// made as CloudFormation makes them, against the Amazon States Language
// (asl-validator from npm, deploy/asl); and shows that the validator
// rejects a broken one: a transition to a state that does not exist, a
// Map without its processor, a Task without Resource.
func TestStateMachineASL(t *testing.T) {
	_, raw := openStack(t, distParameters(testKey))
	def := stateMachineDefinition(t, raw)
	if errs := validateASL(t, def); len(errs) > 0 {
		t.Errorf("the state machine is not valid ASL:\n%s\n%s", strings.Join(errs, "\n"), def)
	}
	broken := map[string]func(states map[string]any){
		"a transition to no state": func(s map[string]any) { s["Load"].(map[string]any)["Next"] = "StartTheDaemon" },
		"a Map without processor": func(s map[string]any) {
			b := s["Load"].(map[string]any)["Branches"].([]any)[1].(map[string]any)
			delete(b["States"].(map[string]any)["Units"].(map[string]any), "ItemProcessor")
		},
		"a Task without Resource": func(s map[string]any) { delete(s["StartDaemon"].(map[string]any), "Resource") },
	}
	for name, breakIt := range broken {
		var m map[string]any
		if err := json.Unmarshal(def, &m); err != nil {
			t.Fatal(err)
		}
		breakIt(m["States"].(map[string]any))
		b, _ := json.Marshal(m)
		if errs := validateASL(t, b); len(errs) == 0 {
			t.Errorf("%s: the validator accepts it", name)
		} else {
			t.Logf("%s: rejected: %s", name, errs[0])
		}
	}
}

// stateMachineDefinition returns the state machine's definition as JSON
// with CloudFormation's DefinitionSubstitutions made: each ${Name}
// replaced by its value's text.
func stateMachineDefinition(t *testing.T, raw map[string]any) []byte {
	t.Helper()
	props := raw["Resources"].(map[string]any)["LoadStateMachine"].(map[string]any)["Properties"].(map[string]any)
	b, err := json.Marshal(props["Definition"])
	if err != nil {
		t.Fatal(err)
	}
	def := string(b)
	for name, v := range props["DefinitionSubstitutions"].(map[string]any) {
		def = strings.ReplaceAll(def, "${"+name+"}", fmt.Sprint(v))
	}
	if !json.Valid([]byte(def)) {
		t.Fatalf("the definition is not JSON once substituted:\n%s", def)
	}
	if i := strings.Index(def, "${"); i >= 0 {
		t.Fatalf("a placeholder without substitution: %s", def[i:min(len(def), i+40)])
	}
	return []byte(def)
}

// validateASL runs deploy/asl/validate.mjs on def: nil when valid, else
// the validator's errors.
func validateASL(t *testing.T, def []byte) []string {
	t.Helper()
	dir := ensureASL(t)
	path := t.TempDir() + "/definition.json"
	if err := os.WriteFile(path, def, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := nodeCommand(dir, "validate.mjs", path).Output()
	if err != nil {
		t.Fatalf("asl-validator: %v", err)
	}
	var res struct {
		Valid  bool
		Errors []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("asl-validator: %v: %s", err, out)
	}
	if res.Valid {
		return nil
	}
	return append(res.Errors, "invalid")[:max(len(res.Errors), 1)]
}
