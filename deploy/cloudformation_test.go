package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/cdc2s3/cdc2s3/pipeline"
)

// testKey is the KMS key of the tests' stack with encryption.
const testKey = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

// stackParameters are the parameters the tests deploy the stack with.
func stackParameters(glue string) map[string]any {
	return map[string]any{
		"Subnets":             []any{"subnet-0a", "subnet-0b"},
		"SecurityGroup":       "sg-0c",
		"SourceSecretArn":     "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cdc2s3/source-AbCdEf",
		"Bucket":              "lake-bucket",
		"Prefix":              "cdc2s3/app",
		"Image":               "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdc2s3:v1",
		"GlueDatabase":        glue,
		"KmsKeyArn":           "",
		"IamAuthDbResourceId": "",
		"AlarmTopicArn":       "arn:aws:sns:eu-west-1:123456789012:ops",
	}
}

// openStack parses deploy/cloudformation.yaml with goformation, which
// knows every resource type and property, its intrinsic functions resolved
// against params and its conditions evaluated; raw is the same template as
// plain JSON after that processing, for the checks of what goformation's
// types would drop. goformation would replace a resource that has a
// Condition by the condition's value, so resource conditions are applied
// here: a resource (or output) whose condition is false is left out, as
// CloudFormation does.
func openStack(t *testing.T, params map[string]any) (*cloudformation.Template, map[string]any) {
	t.Helper()
	data, err := os.ReadFile("cloudformation.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(plain, &doc); err != nil {
		t.Fatal(err)
	}
	conditioned := map[[2]string]string{} // section, name: condition
	for _, section := range []string{"Resources", "Outputs"} {
		for name, r := range doc[section].(map[string]any) {
			if c, ok := r.(map[string]any)["Condition"].(string); ok {
				conditioned[[2]string{section, name}] = c
				delete(r.(map[string]any), "Condition")
			}
		}
	}
	markResourceRefs(doc, doc["Resources"].(map[string]any))
	plain, _ = json.Marshal(doc)
	opts := &intrinsics.ProcessorOptions{ParameterOverrides: params, EvaluateConditions: true}
	processed, err := intrinsics.ProcessJSON(plain, opts)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(processed, &raw); err != nil {
		t.Fatal(err)
	}
	conds := raw["Conditions"].(map[string]any)
	for at, c := range conditioned {
		if on, _ := conds[c].(bool); !on {
			delete(raw[at[0]].(map[string]any), at[1])
		}
	}
	// The pseudo parameter goformation does not know.
	processed, _ = json.Marshal(raw)
	processed = []byte(strings.ReplaceAll(string(processed), `"arn::`, `"arn:aws:`))
	if err := json.Unmarshal(processed, &raw); err != nil {
		t.Fatal(err)
	}
	tmpl, err := goformation.ParseJSONWithOptions(processed, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	return tmpl, raw
}

// markResourceRefs replaces, in v, every Ref to a resource by the string
// "ref:Name" and every Fn::GetAtt of one by "getatt:Name.Attribute", which
// goformation would resolve to null: the tests can then tell which
// resource a policy or a property names.
func markResourceRefs(v any, resources map[string]any) any {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			if name, ok := v["Ref"].(string); ok && resources[name] != nil {
				return "ref:" + name
			}
			if att, ok := v["Fn::GetAtt"].([]any); ok && len(att) == 2 && resources[att[0].(string)] != nil {
				return fmt.Sprintf("getatt:%s.%s", att[0], att[1])
			}
			if att, ok := v["Fn::GetAtt"].(string); ok && resources[strings.Split(att, ".")[0]] != nil {
				return "getatt:" + att
			}
		}
		for k, e := range v {
			v[k] = markResourceRefs(e, resources)
		}
	case []any:
		for i, e := range v {
			v[i] = markResourceRefs(e, resources)
		}
	}
	return v
}

// TestStackParses checks every resource against goformation's types: each
// property the template sets is one the resource type has (a misspelt or
// misplaced property would be dropped by the round trip through the type).
func TestStackParses(t *testing.T) {
	tmpl, raw := openStack(t, stackParameters("lake"))
	resources := raw["Resources"].(map[string]any)
	if len(tmpl.Resources) != len(resources) {
		t.Fatalf("goformation knows %d of the %d resources", len(tmpl.Resources), len(resources))
	}
	for name, r := range tmpl.Resources {
		typed, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		json.Unmarshal(typed, &back)
		want, _ := resources[name].(map[string]any)["Properties"].(map[string]any)
		got, _ := back["Properties"].(map[string]any)
		for _, missing := range lostKeys(want, got, name) {
			t.Errorf("%s: %s is not a property of %s", name, missing, r.AWSCloudFormationType())
		}
	}
}

// lostKeys lists the keys of want (recursively, through maps and lists of
// maps) that got lacks.
func lostKeys(want, got map[string]any, at string) []string {
	var out []string
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			if v != nil {
				out = append(out, at+"."+k)
			}
			continue
		}
		switch v := v.(type) {
		case map[string]any:
			if gm, ok := g.(map[string]any); ok && !strings.Contains(k, "Policy") && k != "Options" && k != "Condition" {
				out = append(out, lostKeys(v, gm, at+"."+k)...)
			}
		case []any:
			gl, _ := g.([]any)
			for i, e := range v {
				if em, ok := e.(map[string]any); ok && i < len(gl) {
					if gm, ok := gl[i].(map[string]any); ok {
						out = append(out, lostKeys(em, gm, at+"."+k)...)
					}
				}
			}
		}
	}
	return out
}

// TestStackService: exactly one task, and a deploy never runs two.
func TestStackService(t *testing.T) {
	tmpl, _ := openStack(t, stackParameters(""))
	svc, err := tmpl.GetECSServiceWithName("Service")
	if err != nil {
		t.Fatal(err)
	}
	dc := svc.DeploymentConfiguration
	if svc.DesiredCount == nil || *svc.DesiredCount != 1 || dc == nil || dc.MinimumHealthyPercent == nil || *dc.MinimumHealthyPercent != 0 ||
		dc.MaximumPercent == nil || *dc.MaximumPercent != 100 {
		t.Errorf("service: desired %v, deployment %+v; want 1 task, minimum healthy 0%%, maximum 100%%", svc.DesiredCount, dc)
	}
}

// statement is one IAM policy statement, as the template writes it.
type statement struct {
	Effect    string
	Action    any
	Resource  any
	Condition map[string]map[string]any
}

func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// taskStatements returns the statements of the task role's policies.
func taskStatements(t *testing.T, raw map[string]any) []statement {
	t.Helper()
	role := raw["Resources"].(map[string]any)["TaskRole"].(map[string]any)["Properties"].(map[string]any)
	var out []statement
	for _, p := range role["Policies"].([]any) {
		if p == nil {
			continue // the Glue policy, off
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

// TestStackTaskRole checks the task role's least privilege: objects only
// under the bucket's prefix, listing only that prefix, Glue only on its
// database and only when it is on; nothing else.
func TestStackTaskRole(t *testing.T) {
	for _, glue := range []string{"", "lake"} {
		_, raw := openStack(t, stackParameters(glue))
		sawGlue := false
		for _, s := range taskStatements(t, raw) {
			if s.Effect != "Allow" {
				t.Errorf("glue %q: statement %+v is not an Allow", glue, s)
			}
			actions, resources := strs(s.Action), strs(s.Resource)
			for _, a := range actions {
				switch {
				case a == "s3:ListBucket":
					prefixes := strs(s.Condition["StringLike"]["s3:prefix"])
					if !slices.Equal(resources, []string{"arn:aws:s3:::lake-bucket"}) ||
						!slices.Equal(prefixes, []string{"cdc2s3/app", "cdc2s3/app/*"}) {
						t.Errorf("ListBucket on %v for prefixes %v; want the bucket, its prefix only", resources, prefixes)
					}
				case a == "s3:GetObject" || a == "s3:PutObject" || a == "s3:DeleteObject":
					for _, r := range resources {
						if !strings.HasSuffix(r, ":s3:::lake-bucket/cdc2s3/app/*") {
							t.Errorf("%s on %s: want objects under the prefix only", a, r)
						}
					}
				case a == "kms:GenerateDataKey" || a == "kms:Decrypt":
					t.Errorf("KMS allowed (%s on %v) with no KmsKeyArn", a, resources)
				case a == "rds-db:connect":
					t.Errorf("rds-db:connect allowed (on %v) with no IamAuthDbResourceId", resources)
				case strings.HasPrefix(a, "glue:"):
					sawGlue = true
					for _, r := range resources {
						if !strings.HasSuffix(r, ":catalog") && !strings.HasSuffix(r, ":database/lake") && !strings.HasSuffix(r, ":table/lake/*") {
							t.Errorf("%s on %s: want the catalog, database lake and its tables only", a, r)
						}
					}
				default:
					t.Errorf("the task role allows %s: not needed by the daemon", a)
				}
				if strings.Contains(a, "*") {
					t.Errorf("wildcard action %s", a)
				}
			}
		}
		if sawGlue != (glue != "") {
			t.Errorf("GlueDatabase %q: Glue actions granted: %v", glue, sawGlue)
		}
	}
}

// TestStackKMS: with KmsKeyArn the task asks for SSE-KMS with that key and
// may use that key only, for writing (GenerateDataKey) and reading back
// (Decrypt); without it, no KMS at all (TestStackTaskRole).
func TestStackKMS(t *testing.T) {
	params := stackParameters("")
	params["KmsKeyArn"] = testKey
	_, raw := openStack(t, params)
	var kms []string
	for _, s := range taskStatements(t, raw) {
		for _, a := range strs(s.Action) {
			if strings.HasPrefix(a, "kms:") {
				kms = append(kms, a)
				if r := strs(s.Resource); !slices.Equal(r, []string{testKey}) {
					t.Errorf("%s on %v, want the key only", a, r)
				}
			}
		}
	}
	if !slices.Equal(kms, []string{"kms:GenerateDataKey", "kms:Decrypt"}) {
		t.Errorf("KMS actions %v, want GenerateDataKey and Decrypt", kms)
	}
	env := containerEnv(t, raw)
	if env["CDC2S3_S3_SSE"] != "aws:kms" || env["CDC2S3_S3_SSE_KMS_KEY_ID"] != testKey {
		t.Errorf("the task does not ask for SSE-KMS with the key: %v %v", env["CDC2S3_S3_SSE"], env["CDC2S3_S3_SSE_KMS_KEY_ID"])
	}
}

// TestStackIAMAuth: with IamAuthDbResourceId the task authenticates with
// IAM tokens and may connect as that one database user of that database.
func TestStackIAMAuth(t *testing.T) {
	params := stackParameters("")
	params["IamAuthDbResourceId"] = "db-ABCDEFGHIJKL01234"
	_, raw := openStack(t, params)
	var got []string
	for _, s := range taskStatements(t, raw) {
		for _, a := range strs(s.Action) {
			if a == "rds-db:connect" {
				got = append(got, strs(s.Resource)...)
			}
		}
	}
	if want := []string{"arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABCDEFGHIJKL01234/cdc2s3"}; !slices.Equal(got, want) {
		t.Errorf("rds-db:connect on %v, want %v", got, want)
	}
	if env := containerEnv(t, raw); env["CDC2S3_SOURCE_IAM_AUTH"] != "true" {
		t.Errorf("CDC2S3_SOURCE_IAM_AUTH = %v", env["CDC2S3_SOURCE_IAM_AUTH"])
	}
}

// TestStackAlarms checks that every alarm watches a metric the daemon
// writes (pipeline.EMFMetrics, run --metrics-emf, which the task turns on),
// in its namespace and with its dimension, and that the four that matter
// exist.
func TestStackAlarms(t *testing.T) {
	tmpl, raw := openStack(t, stackParameters(""))
	emitted := map[string]bool{}
	for _, m := range pipeline.EMFMetrics {
		emitted[m.Name] = true
	}
	watched := map[string]bool{}
	for name, a := range tmpl.GetAllCloudWatchAlarmResources() {
		if a.MetricName == nil || !emitted[*a.MetricName] || a.Namespace == nil || *a.Namespace != pipeline.EMFNamespace {
			t.Errorf("alarm %s watches %v in %v: not a metric cdc2s3 writes", name, a.MetricName, a.Namespace)
			continue
		}
		if len(a.Dimensions) != 1 || a.Dimensions[0].Name != pipeline.EMFDimension || a.Dimensions[0].Value != "cdc2s3" {
			t.Errorf("alarm %s: dimensions %+v, want %s = the slot", name, a.Dimensions, pipeline.EMFDimension)
		}
		if len(a.AlarmActions) != 1 {
			t.Errorf("alarm %s: actions %v, want the topic", name, a.AlarmActions)
		}
		watched[*a.MetricName] = true
	}
	for _, m := range []string{"LagBytes", "LagSeconds", "Ready", "Starts"} {
		if !watched[m] {
			t.Errorf("no alarm on %s", m)
		}
	}
	env := containerEnv(t, raw)
	if env["CDC2S3_METRICS_EMF"] != "true" || env["CDC2S3_LOG_FORMAT"] != "json" {
		t.Errorf("the task does not write the metrics the alarms watch: environment %v", env)
	}
}

// containerEnv is the stack's container environment by name.
func containerEnv(t *testing.T, raw map[string]any) map[string]any {
	t.Helper()
	td := raw["Resources"].(map[string]any)["TaskDefinition"].(map[string]any)["Properties"].(map[string]any)
	c := td["ContainerDefinitions"].([]any)[0].(map[string]any)
	env := map[string]any{}
	for _, e := range c["Environment"].([]any) {
		m := e.(map[string]any)
		env[m["Name"].(string)] = m["Value"]
	}
	return env
}

// TestTaskDefinitionMatchesStack keeps deploy/ecs-task-definition.json (for
// those who deploy without the stack) the stack's container: the same
// command, stop timeout, user, read-only root, volume and settings.
func TestTaskDefinitionMatchesStack(t *testing.T) {
	_, raw := openStack(t, stackParameters(""))
	td := raw["Resources"].(map[string]any)["TaskDefinition"].(map[string]any)["Properties"].(map[string]any)
	stack := td["ContainerDefinitions"].([]any)[0].(map[string]any)
	b, err := os.ReadFile("ecs-task-definition.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		ContainerDefinitions []map[string]any `json:"containerDefinitions"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	c := file.ContainerDefinitions[0]
	pairs := [][3]any{
		{"command", c["command"], stack["Command"]},
		{"stopTimeout", c["stopTimeout"], stack["StopTimeout"]},
		{"user", c["user"], stack["User"]},
		{"readonlyRootFilesystem", c["readonlyRootFilesystem"], stack["ReadonlyRootFilesystem"]},
	}
	for _, p := range pairs {
		if a, _ := json.Marshal(p[1]); string(a) != mustJSON(p[2]) {
			t.Errorf("%s: ecs-task-definition.json has %s, the stack %s", p[0], a, mustJSON(p[2]))
		}
	}
	var names []string
	for _, e := range c["environment"].([]any) {
		names = append(names, e.(map[string]any)["name"].(string))
	}
	var want []string
	for n := range containerEnv(t, raw) {
		want = append(want, n)
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("environment: ecs-task-definition.json sets %v, the stack %v", names, want)
	}
	dockerfile, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if stack["User"] != "65532:65532" || !strings.Contains(string(dockerfile), "distroless/static-debian12:nonroot") {
		t.Errorf("the stack runs as %v; the Dockerfile's image must be distroless nonroot (uid 65532)", stack["User"])
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
