package waf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"

	"github.com/rampartsec/rampart"
)

// Verdict is what the rules decided about one request.
type Verdict struct {
	// Blocked reports that the request must be refused with Status. It is
	// always false in DetectionOnly mode.
	Blocked bool

	// WouldBlock reports that a rule decided to refuse the request. It
	// equals Blocked except in DetectionOnly mode, where it tells what
	// enforcing would have done.
	WouldBlock bool

	// Status is the HTTP status the refusing rule chose (403 unless it
	// said otherwise; 400 for a body that does not parse), or 0.
	Status int

	// Score is the CRS inbound anomaly score at the blocking paranoia
	// level, as far as the rules ran: a request refused on its headers
	// has not had its body scored.
	Score int

	// Matches are the rules that matched and carry a message, in the order
	// they ran, at most 32; the CRS's bookkeeping rules are left out.
	Matches []Match

	// BodyOverLimit reports that the body is longer than Config.BodyLimit
	// (Inspect finds it out by reading at most BodyLimit+1 bytes, whether
	// the body's length is declared or not). With WholeBody the body was
	// then not inspected at all, nor were the rules of the body phase run:
	// the caller must refuse the request. With BodyPrefix only its first
	// BodyLimit bytes were inspected, and the rest reaches the service
	// unseen if the caller lets the request pass.
	BodyOverLimit bool
}

// Body says what Inspect does with a request body.
type Body uint8

const (
	// HeadersOnly leaves the body unread and uninspected.
	HeadersOnly Body = iota
	// WholeBody inspects a body of up to Config.BodyLimit bytes; a longer
	// one is not inspected but reported (Verdict.BodyOverLimit), to be
	// refused, without spending the rules' time on a request that will be
	// refused anyway.
	WholeBody
	// BodyPrefix inspects the first Config.BodyLimit bytes of the body and
	// reports whether there were more (Verdict.BodyOverLimit).
	BodyPrefix
)

// Match is one rule that matched.
type Match struct {
	RuleID   int
	Message  string
	Data     string   // what matched and where, as the rule logs it; at most 256 bytes
	Severity string   // "critical", "error", "warning", "notice", or "" if the rule has none
	Tags     []string // the rule's tags, such as "attack-sqli" and "paranoia-level/1"
}

// Bounds on what a Verdict carries from a request: an attacker chooses the
// matched data, and an odd request can match many rules.
const (
	maxMatches    = 32
	maxDataLen    = 256
	maxMessageLen = 256
)

// Inspect runs the rules over r: its request line, its headers and, as body
// says, its body. clientIP is the address of the client as the gateway
// established it (without port); if empty, the host of r.RemoteAddr is used.
//
// When it reads the body, Inspect reads at most Config.BodyLimit+1 bytes of
// it, whether its length is declared or not, and replaces r.Body with a reader that returns those bytes and then
// the rest of the original body, unread, so that r can be proxied as it
// came; closing the new body closes the original. It never changes r
// otherwise. A request refused on its headers has its body left unread. A
// body longer than the limit is reported in Verdict.BodyOverLimit; with
// WholeBody it is then not inspected at all.
//
// An error means the request could not be inspected in full (reading the
// body failed, or Coraza could not process it): the Verdict holds what was
// decided until then, and the gateway should refuse the request.
func (f *Firewall) Inspect(r *http.Request, clientIP string, body Body) (Verdict, error) {
	tx := f.newTx(experimental.Options{Context: r.Context()})
	defer func() {
		tx.ProcessLogging()
		// Close only resets buffers and removes multipart temporary files;
		// the verdict stands whatever it returns.
		_ = tx.Close()
	}()

	if clientIP == "" {
		clientIP = r.RemoteAddr
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			clientIP = host
		}
	}
	tx.ProcessConnection(clientIP, 0, "", 0)
	// RequestURI is the target exactly as the client sent it; the CRS looks
	// at its raw encoding, which r.URL has already normalized.
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	proto := r.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	tx.ProcessURI(target, r.Method, proto)
	for name, values := range r.Header {
		for _, v := range values {
			tx.AddRequestHeader(name, v)
		}
	}
	// net/http moves these out of r.Header; the rules expect them there.
	if r.Host != "" {
		tx.AddRequestHeader("Host", r.Host)
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		tx.SetServerName(host)
	}
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
	if r.ContentLength > 0 && len(r.Header.Values("Content-Length")) == 0 {
		tx.AddRequestHeader("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}

	if tx.ProcessRequestHeaders() != nil {
		return f.verdict(tx), nil
	}
	over := false
	if body != HeadersOnly && r.Body != nil && r.Body != http.NoBody && tx.IsRequestBodyAccessible() {
		var err error
		over, err = f.writeBody(tx, r, body == BodyPrefix)
		if err != nil || over && body == WholeBody {
			v := f.verdict(tx)
			v.BodyOverLimit = over
			return v, err
		}
	}
	// Called even without a body: most CRS rules, and the anomaly score
	// check, run in the request-body phase.
	_, err := tx.ProcessRequestBody()
	v := f.verdict(tx)
	v.BodyOverLimit = over
	if err != nil {
		return v, fmt.Errorf("waf: inspect request body: %w", err)
	}
	return v, nil
}

// BodyLimit returns how many bytes of a body Inspect inspects
// (Config.BodyLimit, or its default).
func (f *Firewall) BodyLimit() int64 { return f.bodyLimit }

// writeBody buffers the head of r.Body, gives r a body that replays it, and
// writes the part within the limit to the transaction, unless the body is
// longer than the limit (over) and prefix is false.
func (f *Firewall) writeBody(tx types.Transaction, r *http.Request, prefix bool) (over bool, err error) {
	head, eof, readErr := readHead(r.Body, f.bodyLimit+1, r.ContentLength)
	rest := io.Reader(r.Body)
	if eof {
		rest = eofReader{}
	}
	r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(head), rest), orig: r.Body, head: head}
	if readErr != nil {
		return false, fmt.Errorf("waf: read request body: %w", readErr)
	}

	inspected := head
	if over = int64(len(head)) > f.bodyLimit; over {
		if !prefix {
			return true, nil
		}
		inspected = head[:f.bodyLimit]
		if ts, ok := tx.(plugintypes.TransactionState); ok &&
			strings.EqualFold(ts.Variables().RequestBodyProcessor().Get(), "JSON") &&
			wellFormedJSONPrefix(inspected) {
			ts.Variables().TX().Set(truncatedJSONFlag, []string{"1"})
		}
	}
	// Writing exactly BodyLimit bytes reaches Coraza's limit, which marks the
	// body as cut (INBOUND_DATA_ERROR) and processes it at once; a body of
	// exactly BodyLimit bytes is marked too, as Coraza cannot tell.
	if _, _, err := tx.WriteRequestBody(inspected); err != nil {
		return over, fmt.Errorf("waf: buffer request body: %w", err)
	}
	return over, nil
}

// readHead reads from r until EOF or max bytes. It grows its buffer by
// doubling from the declared length (if any) but never past max, so a
// request cannot make it hold more than max bytes.
func readHead(r io.Reader, max, declared int64) (head []byte, eof bool, err error) {
	size := int64(512)
	if declared > 0 {
		// One more byte than declared, to see EOF without growing.
		size = declared + 1
	}
	head = make([]byte, 0, min(size, max))
	for int64(len(head)) < max {
		if len(head) == cap(head) {
			grown := make([]byte, len(head), min(2*int64(cap(head)), max))
			copy(grown, head)
			head = grown
		}
		n, err := r.Read(head[len(head):cap(head)])
		head = head[:len(head)+n]
		if err == io.EOF {
			return head, true, nil
		}
		if err != nil {
			return head, false, err
		}
	}
	return head, false, nil
}

// replayBody is the request body after inspection: the buffered head, then
// whatever the original body still holds.
type replayBody struct {
	io.Reader
	orig io.ReadCloser
	head []byte // kept so tests can check what was buffered
}

func (b *replayBody) Close() error { return b.orig.Close() }

// eofReader stands in for an original body already read to its end, so it
// is not read again after returning io.EOF.
type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// wellFormedJSONPrefix reports whether b, a JSON body cut short, is one JSON
// value that is well formed up to where it was cut (or complete and followed
// only by white space). A body that is malformed before the cut, or holds a
// second value, is not: Coraza's JSON parser stops at the first error or
// after the first value, so what follows would go uninspected.
func wellFormedJSONPrefix(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v json.RawMessage
	err := dec.Decode(&v)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case err != nil:
		return false
	}
	return len(bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")) == 0
}

// detectionOnlyInterrupter is implemented by Coraza's transaction, which in
// DetectionOnly mode records the interruption it did not carry out.
type detectionOnlyInterrupter interface {
	DetectionOnlyInterruption() *types.Interruption
}

// logger is implemented by Coraza's matched rules, which know whether the
// rule asked to be logged.
type logger interface{ Log() bool }

func (f *Firewall) verdict(tx types.Transaction) Verdict {
	var v Verdict
	it := tx.Interruption()
	if it != nil {
		v.Blocked = true
	} else if d, ok := tx.(detectionOnlyInterrupter); ok && f.detectionOnly {
		it = d.DetectionOnlyInterruption()
	}
	if it != nil {
		v.WouldBlock = true
		v.Status = it.Status
		if v.Status == 0 {
			v.Status = http.StatusForbidden
		}
	}
	if ts, ok := tx.(plugintypes.TransactionState); ok {
		if s := ts.Variables().TX().Get("blocking_inbound_anomaly_score"); len(s) > 0 {
			v.Score, _ = strconv.Atoi(s[0])
		}
	}
	var secrets []string // computed at the first match
	for _, mr := range tx.MatchedRules() {
		if mr.Message() == "" {
			continue
		}
		if l, ok := mr.(logger); ok && !l.Log() {
			// A "nolog" rule with a message is CRS bookkeeping, such as
			// 901340 "Enabling body inspection".
			continue
		}
		if len(v.Matches) == maxMatches {
			break
		}
		if secrets == nil {
			secrets = secretValues(tx)
		}
		rule := mr.Rule()
		m := Match{
			RuleID:  rule.ID(),
			Message: truncate(redact(mr.Message(), secrets), maxMessageLen),
			Data:    truncate(matchData(mr, secrets), maxDataLen),
			Tags:    append([]string(nil), rule.Tags()...),
		}
		if rule.Severity() >= 0 {
			m.Severity = rule.Severity().String()
		}
		v.Matches = append(v.Matches, m)
	}
	return v
}

// truncate cuts s to at most n bytes, at a UTF-8 boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "..."
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Secret values never leave Inspect: a Verdict goes into events, and the
// CRS's matched data repeats the value it matched ("found within
// ARGS:password: <the password>"). The value of every cookie, and of every
// argument or header whose name looks like a secret (rampart.SecretName:
// password, token, key, session, authorization, ...), is replaced by
// rampart.Redacted in a match's message and data; a match on such a
// variable keeps only the variable's name, since its data may hold the
// value transformed (lower-cased, decoded) or in part. Values shorter than
// minSecret are left: they would blank unrelated text.
const minSecret = 3

// secretValues returns the secret values of the request in tx, with their
// URL-encoded forms (as REQUEST_URI and the raw body hold them), longest
// first so that no part of one survives a shorter one's replacement. It
// returns a non-nil slice.
func secretValues(tx types.Transaction) []string {
	out := []string{}
	ts, ok := tx.(plugintypes.TransactionState)
	if !ok {
		return out
	}
	vars := ts.Variables()
	add := func(mds []types.MatchData, all bool) {
		for _, md := range mds {
			if v := md.Value(); len(v) >= minSecret && (all || rampart.SecretName(md.Key())) {
				out = append(out, v)
				if e := url.QueryEscape(v); e != v {
					out = append(out, e)
				}
				if e := url.PathEscape(v); e != v {
					out = append(out, e)
				}
			}
		}
	}
	add(vars.RequestCookies().FindAll(), true)
	add(vars.Args().FindAll(), false)
	add(vars.RequestHeaders().FindAll(), false)
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// secretVariable reports whether md is a cookie or a variable whose name
// looks like a secret.
func secretVariable(md types.MatchData) bool {
	return md.Variable() == variables.RequestCookies || md.Key() != "" && rampart.SecretName(md.Key())
}

// matchData is the data of mr with no secret in it (see minSecret).
func matchData(mr types.MatchedRule, secrets []string) string {
	var names []string
	for _, md := range mr.MatchedDatas() {
		if secretVariable(md) {
			if n := md.Variable().Name() + ":" + md.Key(); !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	if len(names) > 0 {
		return "found within " + strings.Join(names, ", ") + ": " + rampart.Redacted
	}
	return redact(mr.Data(), secrets)
}

// redact replaces each of secrets in s.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, rampart.Redacted)
		}
	}
	return s
}
