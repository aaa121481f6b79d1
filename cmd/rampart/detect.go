package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/detect"
)

// detectFlags are the server's detection flags.
type detectFlags struct {
	on        *bool
	dir       *string
	allow     *string
	allowFile *string
}

func addDetectFlags(fs *flag.FlagSet) detectFlags {
	return detectFlags{
		on:        fs.Bool("detect", true, "run the detection engine over the stored events (built-in scenarios, and -scenarios) and make its decisions; -detect=false turns automatic responses off"),
		dir:       fs.String("scenarios", "", "directory of scenario files (*.yaml) that replace built-ins of the same name or add to them, reloaded when they change"),
		allow:     fs.String("detect-allow", "", "comma-separated actors no scenario decides against, scope:value (ip:10.0.0.0/8, user:ops, session:…, device:…)"),
		allowFile: fs.String("detect-allow-file", "", "file of such actors, one a line (# comments)"),
	}
}

// config returns the detection configuration, nil for none.
func (f detectFlags) config() (*control.DetectConfig, error) {
	var entries []string
	for _, e := range strings.Split(*f.allow, ",") {
		if e = strings.TrimSpace(e); e != "" {
			entries = append(entries, e)
		}
	}
	if *f.allowFile != "" {
		file, err := os.Open(*f.allowFile)
		if err != nil {
			return nil, fmt.Errorf("server: -detect-allow-file: %w", err)
		}
		defer file.Close()
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			if line = strings.TrimSpace(line); line != "" {
				entries = append(entries, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("server: -detect-allow-file: %w", err)
		}
	}
	if !*f.on {
		if *f.dir != "" || len(entries) > 0 {
			return nil, usageError{"server: -scenarios, -detect-allow and -detect-allow-file need detection, which -detect=false turns off"}
		}
		return nil, nil
	}
	cfg := &control.DetectConfig{ScenarioDir: *f.dir}
	for _, e := range entries {
		a, err := detect.ParseAllow(e)
		if err != nil {
			return nil, usageError{"server: -detect-allow: " + strings.TrimPrefix(err.Error(), "detect: ")}
		}
		cfg.Allow = append(cfg.Allow, a)
	}
	return cfg, nil
}

func runAlerts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("alerts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	scenario := fs.String("scenario", "", "only alerts of this scenario")
	since := fs.String("since", "", "only alerts raised after this time (RFC 3339) or this long ago (e.g. 24h)")
	limit := fs.Int("limit", 50, "at most this many alerts, newest first")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	for k, v := range map[string]string{"scenario": *scenario, "since": *since} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var list control.AlertList
	raw, err := c.do(ctx, "GET", "/v1/alerts?"+q.Encode(), nil, &list)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRAISED\tSCENARIO\tKEY\tCOUNT\tDISTINCT\tDECISIONS")
	for _, a := range list.Alerts {
		var ds []string
		for _, d := range a.Decisions {
			s := fmt.Sprintf("%s %s:%s %s", d.Action, d.Scope, d.Value, d.TTL)
			switch {
			case d.Skipped != "":
				s += " (skipped: " + d.Skipped + ")"
			case d.Simulated:
				s += " (simulated)"
			}
			ds = append(ds, s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", a.ID, a.Created.Local().Format(time.DateTime), a.Scenario, a.Key,
			a.Count, a.Distinct, strings.Join(ds, "; "))
	}
	return tw.Flush()
}

func decisionsExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("decisions explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	pos, err := parseFlags(fs, args, 1)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var ex control.Explanation
	raw, err := c.do(ctx, "GET", "/v1/decisions/"+url.PathEscape(pos[0])+"/explain", nil, &ex)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	d := ex.Decision
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Decision:\t%s: %s %s:%s\n", d.ID, d.Action, d.Scope, d.Value)
	fmt.Fprintf(tw, "Origin:\t%s\n", d.Origin)
	if d.Simulated {
		fmt.Fprintf(tw, "Simulated:\tyes: recorded and shown, not enforced\n")
	}
	if d.Reason != "" {
		fmt.Fprintf(tw, "Reason:\t%s\n", d.Reason)
	}
	if a := ex.Alert; a != nil {
		fmt.Fprintf(tw, "Alert:\t%s\n", a.ID)
		fmt.Fprintf(tw, "Scenario:\t%s, key %s: %d events", a.Scenario, a.Key, a.Count)
		if a.Distinct > 0 {
			fmt.Fprintf(tw, ", %d distinct", a.Distinct)
		}
		fmt.Fprintf(tw, ", %s to %s\n", a.First.Local().Format(time.DateTime), a.Last.Local().Format(time.DateTime))
	} else if d.AlertID != "" {
		fmt.Fprintf(tw, "Alert:\t%s (no longer stored)\n", d.AlertID)
	}
	tw.Flush()
	if len(d.Evidence) == 0 {
		return nil
	}
	fmt.Fprintf(stdout, "\nEvidence (%d events named, %d still stored):\n", len(d.Evidence), len(ex.Events))
	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tID\tSERVICE\tKIND\tACTION\tROUTE\tACTOR\tVERIFIED")
	for _, e := range ex.Events {
		actor := e.ActorIP
		if e.ActorUser != "" {
			actor += " (" + e.ActorUser + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%v\n", e.Time.Local().Format(time.DateTime), e.ID, e.Service, e.Kind, e.Action,
			e.Route, actor, e.ActorVerified)
	}
	return tw.Flush()
}

func runScenarios(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "usage: rampart scenarios list|test DIR...|replay -since 24h [-dir DIR]"
	if len(args) == 0 {
		return usageError{use}
	}
	switch args[0] {
	case "list", "ls":
		return scenariosList(ctx, args[1:], stdout, stderr)
	case "test":
		return scenariosTest(args[1:], stdout, stderr)
	case "replay":
		return scenariosReplay(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown scenarios command %q; %s", args[0], use)}
}

func scenariosList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scenarios list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var list control.ScenarioList
	raw, err := c.do(ctx, "GET", "/v1/scenarios", nil, &list)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tRESPONSE\tFILE\tDESCRIPTION")
	for _, s := range list.Scenarios {
		resp := "alert only"
		if s.Action != "" {
			resp = fmt.Sprintf("%s %s %s", s.Action, s.Scope, s.TTL)
			if s.Simulate {
				resp += " (simulated)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Type, resp, s.File, s.Description)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if d := list.Detector; d != nil {
		fmt.Fprintf(stdout, "\nThis replica: leading %v, %d events processed, %d alerts, %d decisions, %d skipped as invalid\n",
			d.Leading, d.Events, d.Alerts, d.Decisions, d.Skipped)
	}
	return nil
}

// scenariosTest runs fixtures offline: each DIR is a fixture (it holds
// input.jsonl), or holds fixtures in its subdirectories.
func scenariosTest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scenarios test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dirs, err := parseFlags(fs, args, -1)
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return usageError{"scenarios test takes one or more fixture directories (each with input.jsonl and expected.jsonl, or holding such)"}
	}
	var fixtures []string
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "input.jsonl")); err == nil {
			fixtures = append(fixtures, dir)
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		n := len(fixtures)
		for _, e := range entries {
			sub := filepath.Join(dir, e.Name())
			if _, err := os.Stat(filepath.Join(sub, "input.jsonl")); e.IsDir() && err == nil {
				fixtures = append(fixtures, sub)
			}
		}
		if len(fixtures) == n {
			return fmt.Errorf("scenarios test: %s holds no fixture (no input.jsonl in it or its subdirectories)", dir)
		}
	}
	failed := 0
	for _, dir := range fixtures {
		diff, err := detect.RunFixture(dir)
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(stdout, "FAIL  %s\n      %v\n", dir, err)
		case diff != "":
			failed++
			fmt.Fprintf(stdout, "FAIL  %s: expected (-) and raised (+) alerts differ:\n%s\n", dir, indent(diff))
		default:
			fmt.Fprintf(stdout, "ok    %s\n", dir)
		}
	}
	if failed > 0 {
		return fmt.Errorf("scenarios test: %d of %d fixtures failed", failed, len(fixtures))
	}
	return nil
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "      " + l
	}
	return strings.Join(lines, "\n")
}

func scenariosReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scenarios replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	since := fs.String("since", "24h", "replay the events after this time (RFC 3339) or this long ago")
	until := fs.String("until", "", "and before this time or this long ago (default: now)")
	dir := fs.String("dir", "", "scenario files (*.yaml) to replay with, replacing those of the same name in force on the server")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	req := control.ReplayRequest{Since: *since, Until: *until}
	if *dir != "" {
		// Checked here first, for errors with the local file names.
		if _, err := detect.LoadDir(*dir); err != nil {
			return fmt.Errorf("scenarios replay: %w", err)
		}
		entries, err := os.ReadDir(*dir)
		if err != nil {
			return err
		}
		req.Scenarios = map[string]string{}
		for _, e := range entries {
			if e.IsDir() || (!strings.HasSuffix(e.Name(), ".yaml") && !strings.HasSuffix(e.Name(), ".yml")) {
				continue
			}
			data, err := os.ReadFile(filepath.Join(*dir, e.Name()))
			if err != nil {
				return err
			}
			req.Scenarios[e.Name()] = string(data)
		}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var res control.ReplayResult
	raw, err := c.do(ctx, "POST", "/v1/scenarios/replay", req, &res)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAST\tSCENARIO\tKEY\tCOUNT\tDISTINCT\tWOULD DECIDE")
	for _, a := range res.Alerts {
		var ds []string
		for _, d := range a.Decisions {
			s := fmt.Sprintf("%s %s:%s %s", d.Action, d.Scope, d.Value, d.TTL)
			if d.Simulate {
				s += " (simulated)"
			}
			ds = append(ds, s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", a.Last.Local().Format(time.DateTime), a.Scenario, a.Key, a.Count, a.Distinct, strings.Join(ds, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	more := ""
	if res.Truncated {
		more = " (truncated: the window holds more than one replay reads)"
	}
	fmt.Fprintf(stdout, "\n%d events replayed, %d alerts; nothing was stored%s\n", res.Events, len(res.Alerts), more)
	return nil
}
