package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

// configFlag names the YAML settings file. Every key is a flag name of the
// command (e.g. `flush-interval: 30s`); a flag given on the command line
// wins over its environment variable, which wins over the file, which wins
// over the default. ${VAR} in the file is replaced by the environment
// variable VAR, so secrets can stay out of it.
func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", Usage: "YAML file with settings (keys are flag names; ${VAR} is expanded); flags and CDC2S3_* variables override it", EnvVars: env("CONFIG")}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// applyConfig is a command's Before hook: it reads --config, if given,
// and sets every flag the command line and environment left unset.
func applyConfig(c *cli.Context) error {
	path := c.String("config")
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return cli.Exit(fmt.Sprintf("cannot read --config: %v", err), 2)
	}
	var missing []string
	text := envRef.ReplaceAllStringFunc(string(raw), func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return cli.Exit(fmt.Sprintf("%s: ${%s} is not set in the environment", path, strings.Join(missing, "}, ${")), 2)
	}
	var settings map[string]any
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	if err := dec.Decode(&settings); err != nil && !errors.Is(err, io.EOF) {
		return cli.Exit(fmt.Sprintf("%s: not valid YAML: %v", path, err), 2)
	}
	// One file serves every command: a key of another command (say
	// flush-interval for check) is skipped; a key of none is a typo.
	mine, known := map[string]bool{}, map[string]bool{}
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			mine[n] = true
		}
	}
	for _, cmd := range c.App.Commands {
		for _, f := range cmd.Flags {
			for _, n := range f.Names() {
				known[n] = true
			}
		}
	}
	for n := range mine {
		known[n] = true
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !known[k] || k == "config" {
			names := make([]string, 0, len(known))
			for n := range known {
				if n != "config" && n != "help" && n != "h" {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			return cli.Exit(fmt.Sprintf("%s: unknown key %q (known: %s)", path, k, strings.Join(names, ", ")), 2)
		}
		if roleFlags[k] {
			return cli.Exit(fmt.Sprintf("%s: %q is a role of one process, not a setting: give --%s on the command line", path, k, k), 2)
		}
		if !mine[k] || c.IsSet(k) {
			continue // another command's setting, or set by flag or environment
		}
		v, err := scalar(settings[k])
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s: key %q: %v", path, k, err), 2)
		}
		if err := c.Set(k, v); err != nil {
			return cli.Exit(fmt.Sprintf("%s: key %q: invalid value %q: %v", path, k, v, err), 2)
		}
	}
	return nil
}

// scalar renders a YAML value as the text a flag parses; lists become
// comma-separated (for --tables).
func scalar(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", errors.New("no value")
	case string:
		return x, nil
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(x), nil
	case time.Time:
		return "", errors.New("a date is not a valid value")
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := scalar(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("a %T is not a valid value: use a string, number, boolean or list", v)
}

// configCommand prints the settings of run with their defaults, as a YAML
// file to start from.
func configCommand(cmds []*cli.Command) *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "configuration file helpers",
		Subcommands: []*cli.Command{{
			Name:  "defaults",
			Usage: "print every setting of run and snapshot with its default and meaning, as YAML",
			Action: func(c *cli.Context) error {
				w := c.App.Writer
				fmt.Fprintln(w, "# cdc2s3 settings: pass with --config FILE (or CDC2S3_CONFIG).")
				fmt.Fprintln(w, "# A flag on the command line wins over its CDC2S3_* variable, which wins over this file.")
				fmt.Fprintln(w, "# ${VAR} is replaced by the environment variable VAR (e.g. source: ${DATABASE_URL}).")
				seen := map[string]bool{"config": true, "help": true}
				for _, cmd := range cmds {
					if cmd.Name != "run" && cmd.Name != "snapshot" {
						continue
					}
					for _, f := range cmd.Flags {
						name := f.Names()[0]
						if seen[name] || roleFlags[name] {
							continue
						}
						seen[name] = true
						if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
							continue // hidden: not a setting to start from
						}
						df, ok := f.(cli.DocGenerationFlag)
						if !ok {
							continue
						}
						usage, def := df.GetUsage(), df.GetDefaultText()
						if def == "" {
							def = df.GetValue()
						}
						if u, err := strconv.Unquote(def); err == nil {
							def = u
						}
						envs := df.GetEnvVars()
						fmt.Fprintf(w, "\n# %s", usage)
						if len(envs) > 0 {
							fmt.Fprintf(w, " (env %s)", envs[0])
						}
						fmt.Fprintln(w)
						if def == "" {
							fmt.Fprintf(w, "# %s:\n", name)
						} else {
							fmt.Fprintf(w, "%s: %s\n", name, yamlString(def))
						}
					}
				}
				return nil
			},
		}},
	}
}

func yamlString(s string) string {
	if strings.ContainsAny(s, ":#{}[],&*!|>'\"%@`") || slices.Contains([]string{"yes", "no", "on", "off", "null"}, s) {
		return fmt.Sprintf("%q", s)
	}
	return s
}
