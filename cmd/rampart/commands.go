package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rampartsec/rampart/internal/control"
	"github.com/rampartsec/rampart/internal/store"
)

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "usage: rampart token create|list|revoke"
	if len(args) == 0 {
		return usageError{use}
	}
	switch args[0] {
	case "create":
		return tokenCreate(ctx, args[1:], stdout, stderr)
	case "list", "ls":
		return tokenList(ctx, args[1:], stdout, stderr)
	case "revoke":
		return tokenRevoke(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown token command %q; %s", args[0], use)}
}

func tokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	ttl := fs.Duration("ttl", 0, "how long the token is valid (default 1h, at most 168h)")
	uses := fs.Int("uses", 1, "how many processes may join with it: one per replica")
	pos, err := parseFlags(fs, args, 1)
	if err != nil {
		if _, ok := err.(usageError); ok {
			return usageError{err.Error() + ": SERVICE"}
		}
		return err
	}
	if *uses < 1 || *uses > store.MaxJoinTokenUses {
		return usageError{fmt.Sprintf("-uses %d: want 1 to %d", *uses, store.MaxJoinTokenUses)}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	req := control.TokenRequest{Service: pos[0], Uses: *uses}
	if *ttl != 0 {
		req.TTL = ttl.String()
	}
	var tok control.TokenResponse
	raw, err := c.do(ctx, "POST", "/v1/tokens", req, &tok)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	fmt.Fprintln(stdout, tok.Token)
	n := "single use"
	if tok.Uses > 1 {
		n = fmt.Sprintf("%d uses", tok.Uses)
	}
	fmt.Fprintf(stderr, "Join token %s for service %s, %s, expires %s. It is shown only once.\n",
		tok.ID, tok.Service, n, tok.Expires.Local().Format(time.RFC3339))
	return nil
}

func tokenList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	service := fs.String("service", "", "only the tokens of this service")
	all := fs.Bool("all", false, "include used-up, expired and revoked tokens")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *service != "" {
		q.Set("service", *service)
	}
	if *all {
		q.Set("all", "true")
	}
	var list control.TokenList
	raw, err := c.do(ctx, "GET", "/v1/tokens?"+q.Encode(), nil, &list)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSERVICE\tUSES LEFT\tEXPIRES\tLAST USED\tSTATE")
	now := time.Now()
	for _, t := range list.Tokens {
		last := "-"
		if !t.LastUsed.IsZero() {
			last = t.LastUsed.Local().Format(time.DateTime)
		}
		state := "usable"
		switch {
		case !t.Revoked.IsZero():
			state = "revoked " + t.Revoked.Local().Format(time.DateTime)
		case t.UsesLeft == 0:
			state = "used up"
		case !now.Before(t.Expires):
			state = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d of %d\t%s\t%s\t%s\n", t.ID, t.Service, t.UsesLeft, t.Uses, t.Expires.Local().Format(time.DateTime), last, state)
	}
	return tw.Flush()
}

func tokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	ids, err := parseFlags(fs, args, -1)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return usageError{"token revoke takes one or more token ids (see 'rampart token list')"}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	revoked := []store.JoinToken{}
	for _, id := range ids {
		var tok store.JoinToken
		if _, err := c.do(ctx, "POST", "/v1/tokens/"+url.PathEscape(id)+"/revoke", nil, &tok); err != nil {
			if len(revoked) > 0 {
				return fmt.Errorf("token %s: %w (revoked before it: %d)", id, err, len(revoked))
			}
			return fmt.Errorf("token %s: %w", id, err)
		}
		revoked = append(revoked, tok)
		if !c.json {
			fmt.Fprintf(stdout, "revoked %s (service %s, %d of %d uses were left)\n", tok.ID, tok.Service, tok.UsesLeft, tok.Uses)
		}
	}
	if c.json {
		return json.NewEncoder(stdout).Encode(control.TokenList{Tokens: revoked})
	}
	return nil
}

func runDecisions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const use = "usage: rampart decisions add|list|rm|explain"
	if len(args) == 0 {
		return usageError{use}
	}
	switch args[0] {
	case "add":
		return decisionsAdd(ctx, args[1:], stdout, stderr)
	case "list", "ls":
		return decisionsList(ctx, args[1:], stdout, stderr)
	case "rm", "delete":
		return decisionsRm(ctx, args[1:], stdout, stderr)
	case "explain":
		return decisionsExplain(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown decisions command %q; %s", args[0], use)}
}

func decisionsAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("decisions add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	action := fs.String("action", string(store.ActionBlock), "block, block-sensitive, read-only or rate-limit")
	ttl := fs.Duration("ttl", 0, "how long the decision lasts (default: until removed)")
	reason := fs.String("reason", "", "why, for the people who read it later")
	rate := fs.Int("rate-limit", 0, "requests per minute, with -action rate-limit")
	force := fs.Bool("force", false, "allow a network wider than /8 (IPv4) or /32 (IPv6), up to every address")
	pos, err := parseFlags(fs, args, 2)
	if err != nil {
		if _, ok := err.(usageError); ok {
			return usageError{err.Error() + ": SCOPE (ip, cidr, user, session) and VALUE"}
		}
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	req := control.DecisionRequest{Scope: store.Scope(pos[0]), Value: pos[1], Action: store.DecisionAction(*action),
		Reason: *reason, RateLimit: *rate, Force: *force}
	if *ttl != 0 {
		req.TTL = ttl.String()
	}
	var d store.Decision
	raw, err := c.do(ctx, "POST", "/v1/decisions", req, &d)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	return printDecisions(stdout, []store.Decision{d})
}

func decisionsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("decisions list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	all := fs.Bool("all", false, "include expired decisions")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var list control.DecisionList
	raw, err := c.do(ctx, "GET", "/v1/decisions?expired="+strconv.FormatBool(*all), nil, &list)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	return printDecisions(stdout, list.Decisions)
}

func decisionsRm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("decisions rm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	ids, err := parseFlags(fs, args, -1)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return usageError{"decisions rm takes one or more decision ids (see 'rampart decisions list')"}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	removed := []string{}
	for _, id := range ids {
		if _, err := c.do(ctx, "DELETE", "/v1/decisions/"+url.PathEscape(id), nil, nil); err != nil {
			if len(removed) > 0 {
				return fmt.Errorf("decision %s: %w (removed before it: %s)", id, err, strings.Join(removed, " "))
			}
			return fmt.Errorf("decision %s: %w", id, err)
		}
		removed = append(removed, id)
		if !c.json {
			fmt.Fprintf(stdout, "removed %s\n", id)
		}
	}
	if c.json {
		return json.NewEncoder(stdout).Encode(map[string][]string{"removed": removed})
	}
	return nil
}

func printDecisions(w io.Writer, ds []store.Decision) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCOPE\tVALUE\tACTION\tEXPIRES\tORIGIN\tREASON")
	now := time.Now()
	for _, d := range ds {
		expires := "never"
		if !d.Expires.IsZero() {
			expires = d.Expires.Local().Format(time.DateTime)
			if d.Expired(now) {
				expires += " (expired)"
			}
		}
		action := string(d.Action)
		if d.Action == store.ActionRateLimit && d.RateLimit > 0 {
			action += fmt.Sprintf(" %d/min", d.RateLimit)
		}
		origin := d.Origin
		if d.Simulated {
			origin += " (simulated)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Scope, d.Value, action, expires, origin, d.Reason)
	}
	return tw.Flush()
}

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	kind := fs.String("kind", "", "only events of this kind, e.g. sql_injection")
	service := fs.String("service", "", "only events of this service")
	actor := fs.String("actor-ip", "", "only events of this external actor IP")
	trace := fs.String("trace", "", "only events of this trace id")
	since := fs.String("since", "", "only events after this time (RFC 3339) or this long ago (e.g. 1h)")
	limit := fs.Int("limit", 50, "at most this many events, newest first")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{"order": {"desc"}, "limit": {strconv.Itoa(*limit)}}
	for k, v := range map[string]string{"kind": *kind, "service": *service, "actor_ip": *actor, "trace_id": *trace, "since": *since} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var page control.EventPage
	raw, err := c.do(ctx, "GET", "/v1/events?"+q.Encode(), nil, &page)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSERVICE\tKIND\tACTION\tROUTE\tACTOR\tTRACE")
	for _, e := range page.Events {
		actor := e.ActorIP
		if e.ActorUser != "" {
			actor += " (" + e.ActorUser + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.Service, e.Kind, e.Action, e.Route, actor, e.TraceID)
	}
	return tw.Flush()
}

func runServices(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "revoke" || args[0] == "reinstate") {
		return servicesRevoke(ctx, args[0], args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("services", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	exposed := fs.Bool("exposed", false, "only services reached from the edge")
	module := fs.String("module", "", "only services whose build includes this module path")
	if _, err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if *exposed {
		q.Set("exposed", "true")
	}
	if *module != "" {
		q.Set("module", *module)
	}
	var list control.ServiceList
	raw, err := c.do(ctx, "GET", "/v1/services?"+q.Encode(), nil, &list)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tINSTANCES\tEXPOSED\tLAST SEEN\tREVOKED")
	for _, s := range list.Services {
		last, revoked := "-", "-"
		if !s.LastSeen.IsZero() {
			last = s.LastSeen.Local().Format(time.DateTime)
		}
		if !s.Revoked.IsZero() {
			revoked = s.Revoked.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%d\t%t\t%s\t%s\n", s.Name, s.Instances, s.Exposed, last, revoked)
	}
	return tw.Flush()
}

// servicesRevoke revokes a service (its SVIDs are no longer renewed, its
// join tokens no longer honoured) or reinstates it.
func servicesRevoke(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("services "+verb, flag.ContinueOnError)
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
	var s store.Service
	raw, err := c.do(ctx, "POST", "/v1/services/"+url.PathEscape(pos[0])+"/"+verb, nil, &s)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, raw)
	}
	if verb == "revoke" {
		fmt.Fprintf(stdout, "revoked %s: its SVIDs will not be renewed and it cannot join again until reinstated\n", s.Name)
	} else {
		fmt.Fprintf(stdout, "reinstated %s\n", s.Name)
	}
	return nil
}
