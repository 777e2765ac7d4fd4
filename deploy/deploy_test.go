package deploy_test

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// root is the repository's root, where the deployment files live.
const root = ".."

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
}

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// shellWords splits a command line as a POSIX shell would for the simple
// quoting a Dockerfile uses, expanding $NAME and ${NAME} from vars.
func shellWords(t *testing.T, s string, vars map[string]string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord := false
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'' && c != '\'':
			w.WriteByte(c)
		case c == '\'' && quote != '"':
			quote = map[bool]byte{true: 0, false: '\''}[quote == '\'']
			inWord = true
		case c == '"':
			quote = map[bool]byte{true: 0, false: '"'}[quote == '"']
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		case c == '$':
			name := ""
			if strings.HasPrefix(s[i+1:], "{") {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					t.Fatalf("unterminated ${ in %q", s)
				}
				name, i = s[i+2:i+end], i+end
			} else {
				j := i + 1
				for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9') {
					j++
				}
				name, i = s[i+1:j], j-1
			}
			v, ok := vars[name]
			if !ok {
				t.Fatalf("the build command uses $%s, which no ARG or ENV gives a value", name)
			}
			w.WriteString(v)
			inWord = true
		case quote == 0 && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case quote == 0 && strings.ContainsRune(";&|<>`", rune(c)):
			t.Fatalf("the build command %q is more than one simple command; keep it one", s)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// dockerBuild is the Dockerfile's go build command.
type dockerBuild struct {
	env      []string // NAME=value set on the command
	args     []string // after "go build", -o's value included
	output   string
	finalRun []instruction // instructions of the last stage
}

func parseDockerfile(t *testing.T) dockerBuild {
	t.Helper()
	var b dockerBuild
	vars := map[string]string{}
	var builds []string
	for _, in := range readDockerfile(t) {
		switch in.cmd {
		case "FROM":
			b.finalRun = nil
			vars = map[string]string{}
		case "ARG", "ENV":
			name, value, _ := strings.Cut(in.args, "=")
			vars[name] = strings.Trim(value, `"`)
		case "RUN":
			if strings.Contains(in.args, "go build") {
				builds = append(builds, in.args)
				words := shellWords(t, in.args, vars)
				for len(words) > 0 && strings.Contains(words[0], "=") {
					b.env = append(b.env, words[0])
					words = words[1:]
				}
				if len(words) < 2 || words[0] != "go" || words[1] != "build" {
					t.Fatalf("the build command %q is not [NAME=value ...] go build ...", in.args)
				}
				b.args = words[2:]
			}
		}
		b.finalRun = append(b.finalRun, in)
	}
	if len(builds) != 1 {
		t.Fatalf("the Dockerfile has %d go build commands, want 1", len(builds))
	}
	for i, a := range b.args {
		if a == "-o" && i+1 < len(b.args) {
			b.output = b.args[i+1]
		}
	}
	if b.output == "" {
		t.Fatal("the go build command names no -o output")
	}
	return b
}

// execForm decodes an instruction's JSON (exec) form.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(in.args), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("%s %s is not in exec form, which an image without a shell needs", in.cmd, in.args)
	}
	return argv
}

// Ensure the binary builds with the Dockerfile's exact command into what a
// distroless static image needs: statically linked, built without cgo and
// with trimmed paths, and that the image's health check and entry point
// name a command the binary has.
func TestDockerfileBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tenantry from scratch (-trimpath misses the usual cache); skipped in -short mode")
	}
	t.Parallel()
	b := parseDockerfile(t)
	for _, want := range []string{"CGO_ENABLED=0"} {
		if !slices.Contains(b.env, want) {
			t.Errorf("the build command does not set %s", want)
		}
	}
	if !slices.Contains(b.args, "-trimpath") {
		t.Error("the build command does not pass -trimpath")
	}

	bin := filepath.Join(t.TempDir(), "tenantry")
	args := slices.Clone(b.args)
	for i := range args {
		if args[i] == b.output && i > 0 && args[i-1] == "-o" {
			args[i] = bin
		}
	}
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	// The Dockerfile builds in the copied repository, which is root.
	cmd.Dir = root
	cmd.Env = append(os.Environ(), b.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("build settings CGO_ENABLED=%q -trimpath=%q", settings["CGO_ENABLED"], settings["-trimpath"])
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader: it would not start in a static image")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "tenantry ") {
		t.Errorf("tenantry version: %q, %v", out, err)
	}

	// The last stage: what runs.
	var entry, health, command []string
	user := ""
	for _, in := range b.finalRun {
		switch in.cmd {
		case "ENTRYPOINT":
			entry = execForm(t, in)
		case "CMD":
			command = execForm(t, in)
		case "USER":
			user = in.args
		case "HEALTHCHECK":
			_, form, ok := strings.Cut(in.args, " CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK %s has no CMD", in.args)
			}
			health = execForm(t, instruction{"HEALTHCHECK CMD", form})
		}
	}
	if from := b.finalRun[0].args; !strings.Contains(from, "distroless/static") && from != "scratch" {
		t.Errorf("the final image is %s, want distroless static or scratch", from)
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "root" || name == "0" {
		t.Errorf("the final image runs as %q, want a non-root user", user)
	}
	if len(entry) == 0 || len(health) == 0 || health[0] != entry[0] {
		t.Fatalf("ENTRYPOINT %v and HEALTHCHECK %v must both run tenantry", entry, health)
	}
	// Each command the image runs exists in the binary.
	for _, argv := range [][]string{health[1:], command} {
		if out, err := exec.Command(bin, append(slices.Clone(argv), "--help")...).CombinedOutput(); err != nil ||
			!strings.Contains(string(out), "Usage:") {
			t.Errorf("tenantry %s --help: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
}

// compose is the part of a compose file this test reads.
type compose struct {
	Services map[string]service `yaml:"services"`
}

type service struct {
	Build       any            `yaml:"build"`
	Image       string         `yaml:"image"`
	Command     any            `yaml:"command"`
	Environment any            `yaml:"environment"`
	Restart     string         `yaml:"restart"`
	DependsOn   map[string]dep `yaml:"depends_on"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
}

type dep struct {
	Condition string `yaml:"condition"`
}

// tenantry reports whether the service runs the image the Dockerfile builds.
func (s service) tenantry() bool { return s.Build != nil }

// healthChecked reports whether the service has a health check: its own,
// or the image's HEALTHCHECK for tenantry's.
func (s service) healthChecked() bool {
	if s.Healthcheck != nil {
		return !s.Healthcheck.Disable && len(s.Healthcheck.Test) > 0
	}
	return s.tenantry()
}

// environment returns the names of the variables the service sets.
func (s service) environment(t *testing.T) []string {
	t.Helper()
	var names []string
	switch env := s.Environment.(type) {
	case nil:
	case map[string]any:
		for name := range env {
			names = append(names, name)
		}
	case []any:
		for _, kv := range env {
			name, _, _ := strings.Cut(fmt.Sprint(kv), "=")
			names = append(names, name)
		}
	default:
		t.Fatalf("environment %T is neither a map nor a list", env)
	}
	slices.Sort(names)
	return names
}

func readCompose(t *testing.T) compose {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("compose.yaml has no services")
	}
	return c
}

// documentedVariables returns the environment variables the README's
// configuration table names.
func documentedVariables(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile("`([A-Z][A-Z0-9_]+)`")
	out := map[string]bool{}
	for line := range strings.Lines(string(data)) {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			out[m[1]] = true
		}
	}
	if len(out) < 10 {
		t.Fatalf("found only %d variables in the README's configuration table", len(out))
	}
	return out
}

// Ensure every variable the compose file sets for tenantry is one the
// README documents: an undocumented one is a typo or a secret setting.
func TestComposeSetsOnlyDocumentedVariables(t *testing.T) {
	t.Parallel()
	documented := documentedVariables(t)
	c := readCompose(t)
	checked := 0
	for name, s := range c.Services {
		if !s.tenantry() {
			continue // the variables of other images are theirs
		}
		for _, v := range s.environment(t) {
			checked++
			if !documented[v] {
				t.Errorf("service %s sets %s, which the README's configuration table does not document", name, v)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no tenantry service sets any variable")
	}
}

// Ensure the compose file runs the production shape as the README says:
// two API processes, one worker and a one-shot migration they wait for,
// every dependency waited for on a condition its target can meet, and a
// health check on every long-running service.
func TestComposeRunsTheProductionShape(t *testing.T) {
	t.Parallel()
	c := readCompose(t)
	commands := map[string][]string{}
	for name, s := range c.Services {
		if s.tenantry() {
			cmd, _ := s.Command.([]any)
			if len(cmd) != 1 {
				t.Errorf("service %s runs %v, want one tenantry command", name, s.Command)
				continue
			}
			commands[fmt.Sprint(cmd[0])] = append(commands[fmt.Sprint(cmd[0])], name)
			if !slices.Contains(s.environment(t), "DATABASE_URL") {
				t.Errorf("service %s has no DATABASE_URL: it would run the embedded shape", name)
			}
		}
		oneShot := s.Restart == "no" || s.Restart == ""
		if !oneShot && !s.healthChecked() {
			t.Errorf("long-running service %s has no health check", name)
		}
		for target, d := range s.DependsOn {
			ts, ok := c.Services[target]
			switch {
			case !ok:
				t.Errorf("service %s depends on %s, which does not exist", name, target)
			case d.Condition == "service_healthy" && !ts.healthChecked():
				t.Errorf("service %s waits for %s to be healthy, which has no health check", name, target)
			case d.Condition == "service_completed_successfully" && !(ts.Restart == "no" || ts.Restart == ""):
				t.Errorf("service %s waits for %s to complete, which restarts", name, target)
			case d.Condition == "":
				t.Errorf("service %s depends on %s without a condition", name, target)
			}
		}
	}
	if len(commands["serve"]) != 2 || len(commands["worker"]) != 1 || len(commands["migrate"]) != 1 {
		t.Fatalf("tenantry services by command: %v; want two serve, one worker, one migrate", commands)
	}
	migrate := commands["migrate"][0]
	for _, name := range append(slices.Clone(commands["serve"]), commands["worker"]...) {
		if c.Services[name].DependsOn[migrate].Condition != "service_completed_successfully" {
			t.Errorf("service %s does not wait for %s to complete", name, migrate)
		}
	}
	for _, engine := range []string{"DATABASE_URL", "S3_BUCKET", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"} {
		if !slices.Contains(c.Services[commands["worker"][0]].environment(t), engine) {
			t.Errorf("the worker does not set %s", engine)
		}
	}
}
