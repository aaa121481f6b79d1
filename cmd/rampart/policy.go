package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/store"
)

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "usage: rampart policy apply -f FILE | rampart policy show [-version N]"
	if len(args) == 0 {
		return usageError{use}
	}
	switch args[0] {
	case "apply":
		return policyApply(ctx, args[1:], stdout, stderr)
	case "show":
		return policyShow(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown policy command %q; %s", args[0], use)}
}

func policyApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	file := fs.String("f", "", "the policy document, YAML (required)")
	base := fs.Int64("base", -1, "refuse to apply unless the current version is this one (default: apply whatever it is)")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *file == "" {
		return usageError{"policy apply: -f FILE is required"}
	}
	doc, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	path := "/v1/policy"
	if *base >= 0 {
		path += "?base=" + strconv.FormatInt(*base, 10)
	}
	var p store.Policy
	raw, err := c.doRaw(ctx, "PUT", path, "application/yaml", doc, &p)
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	fmt.Fprintf(stdout, "applied policy version %d\n", p.Version)
	return nil
}

func policyShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	version := fs.Int64("version", 0, "show this version (default: the latest)")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	path := "/v1/policy"
	if *version > 0 {
		path += "?version=" + strconv.FormatInt(*version, 10)
	}
	var p store.Policy
	raw, err := c.do(ctx, "GET", path, nil, &p)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	fmt.Fprintf(stdout, "# policy version %d, applied %s\n%s", p.Version, p.Created.Local().Format(time.DateTime), p.YAML)
	return nil
}
