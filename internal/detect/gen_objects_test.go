package detect

import (
	"fmt"
	"time"
)

// The generators of the fixtures of the scenarios about object ids,
// brute force per range and device, and scraping by objects.
func init() {
	generated["bola-sequential"] = func() []Event {
		tr := newTraffic(21)
		// An enumerating script: other users' orders, one id after the
		// next (skipping a deleted one).
		for i, id := range []int{1000, 1001, 1002, 1004, 1005, 1006, 1007, 1008} {
			tr.add(time.Duration(i)*3*time.Second, objectAccess("203.0.113.66", "u-mallory", "order", fmt.Sprintf("o-%d", id), fmt.Sprintf("u%04d", id)))
		}
		// A user switching back and forth between two orders shared with
		// her: not a walk.
		for i := range 12 {
			tr.add(time.Duration(i)*5*time.Second, objectAccess("198.51.100.10", "u-alice", "order", fmt.Sprintf("o-%d", 500+i%2), "u-team"))
		}
		// A user reading foreign objects far apart: not a walk.
		for i, id := range []int{7, 93, 412, 58, 2001, 13, 770, 345} {
			tr.add(time.Duration(i)*4*time.Second, objectAccess("198.51.100.11", "u-carol", "order", fmt.Sprintf("o-%d", id), "u-other"))
		}
		// Support staff walking customers' orders: exempted.
		for i := range 12 {
			ev := objectAccess("198.51.100.10", "support-1", "order", fmt.Sprintf("o-%d", 3000+i), fmt.Sprintf("u%04d", i))
			ev.Attrs = map[string]string{"role": "support"}
			tr.add(time.Duration(i)*3*time.Second, ev)
		}
		// The same walk by a user nobody verified: no key.
		for i := range 12 {
			ev := objectAccess("203.0.113.67", "u-claimed", "order", fmt.Sprintf("o-%d", 4000+i), fmt.Sprintf("u%04d", i))
			ev.ActorVerified = false
			tr.add(time.Duration(i)*3*time.Second, ev)
		}
		return tr.events("bseq")
	}
	generated["object-id-probing"] = func() []Event {
		tr := newTraffic(22)
		// Guessing order ids without a user: 404 for each.
		for i := range 15 {
			tr.add(time.Duration(i)*2*time.Second, request("203.0.113.66", "", "GET /orders/{id}", fmt.Sprintf("/orders/%d", 1000+i*7), 404))
		}
		// Guessing file ids (hex): 403 for each.
		for i := range 12 {
			tr.add(time.Duration(i)*2*time.Second, request("203.0.113.77", "", "GET /files/{id}", fmt.Sprintf("/files/%016x", 0xfeed0000+i), 403))
		}
		// Stale links and missing pages from an office: few ids, and
		// paths that end in no id.
		tr.add(time.Second, request("198.51.100.10", "", "GET /orders/{id}", "/orders/17", 404))
		tr.add(9*time.Second, request("198.51.100.10", "", "GET /orders/{id}", "/orders/18", 404))
		for i := range 20 {
			tr.add(time.Duration(i)*time.Second, request("198.51.100.10", "", "", fmt.Sprintf("/old/page%d", i), 404))
		}
		// A logged-in user probing: object-id-probing-user's, not this.
		for i := range 15 {
			tr.add(time.Duration(i)*2*time.Second, request("198.51.100.12", "u-mallory", "GET /orders/{id}", fmt.Sprintf("/orders/%d", 2000+i), 403))
		}
		return tr.events("oidp")
	}
	generated["object-id-probing-user"] = func() []Event {
		tr := newTraffic(23)
		// A user behind the office address trying other users' orders.
		for i := range 15 {
			tr.add(time.Duration(i)*2*time.Second, request("198.51.100.10", "u-mallory", "GET /orders/{id}", fmt.Sprintf("/orders/%d", 2000+i), 403))
		}
		// A colleague behind the same address with a stale link or two.
		tr.add(3*time.Second, request("198.51.100.10", "u-bob", "GET /orders/{id}", "/orders/31", 404))
		tr.add(8*time.Second, request("198.51.100.10", "u-bob", "GET /orders/{id}", "/orders/32", 404))
		// Anonymous probing: object-id-probing's, not this.
		for i := range 15 {
			tr.add(time.Duration(i)*2*time.Second, request("203.0.113.66", "", "GET /orders/{id}", fmt.Sprintf("/orders/%d", 1000+i), 404))
		}
		return tr.events("oidpu")
	}
	generated["brute-force-range"] = func() []Event {
		tr := newTraffic(24)
		// 30 addresses of one /24, one attempt each at alice's password:
		// no address is loud.
		for i := range 30 {
			tr.add(time.Duration(i)*2*time.Second, loginFailure(fmt.Sprintf("192.0.2.%d", 10+i), "alice@example.com", true))
		}
		// The same over an IPv6 /64.
		for i := range 30 {
			tr.add(time.Duration(i)*2*time.Second, loginFailure(fmt.Sprintf("2001:db8:7:1::%x", 0x100+i), "bob@example.com", true))
		}
		// An office /24 where three people mistype a few times each.
		for u := range 3 {
			for i := range 3 {
				tr.add(time.Duration(u*30+i*8)*time.Second, loginFailure(fmt.Sprintf("198.51.100.%d", 10+u), fmt.Sprintf("user%d@example.com", u), true))
			}
		}
		return tr.events("bfr")
	}
	generated["brute-force-device"] = func() []Event {
		tr := newTraffic(25)
		// A browser-driven bot keeping its device cookie through a proxy
		// pool: a new address each attempt at alice's password.
		for i := range 15 {
			tr.add(time.Duration(i)*5*time.Second, withDevice(loginFailure(fmt.Sprintf("203.0.%d.%d", 113+i%3, 20+i), "alice@example.com", true), "c-bot"))
		}
		// The same device claimed on events nobody verified: not counted.
		for i := range 15 {
			ev := loginFailure(fmt.Sprintf("198.51.100.%d", 100+i), "carol@example.com", true)
			ev.Actor.Device = "c-claimed"
			tr.add(time.Duration(i)*5*time.Second, ev)
		}
		// A user who forgot her password, from her own browser.
		for i := range 4 {
			tr.add(time.Duration(i)*20*time.Second, withDevice(loginFailure("198.51.100.10", "dana@example.com", true), "c-dana"))
		}
		return tr.events("bfd")
	}
	generated["scraping-objects"] = func() []Event {
		tr := newTraffic(26)
		// A logged-in scraper, 3 products a second: 300 distinct.
		for i := range 300 {
			tr.add(time.Duration(i)*300*time.Millisecond, objectAccess("203.0.113.66", "u-scraper", "product", fmt.Sprintf("p-%d", i), ""))
		}
		// A shopper browsing 30 products.
		for i := range 30 {
			tr.add(time.Duration(i)*6*time.Second, objectAccess("198.51.100.10", "u-shopper", "product", fmt.Sprintf("p-%d", i*3), ""))
		}
		// Support staff reading 400 customers' orders: exempted.
		for i := range 400 {
			ev := objectAccess("198.51.100.10", "support-1", "order", fmt.Sprintf("o-%d", i), fmt.Sprintf("u%04d", i))
			ev.Attrs = map[string]string{"role": "support"}
			tr.add(time.Duration(i)*200*time.Millisecond, ev)
		}
		return tr.events("scro")
	}
	generated["scraping-objects-anonymous"] = func() []Event {
		tr := newTraffic(27)
		// An anonymous scraper, 4 products a second: 300 distinct.
		for i := range 300 {
			tr.add(time.Duration(i)*250*time.Millisecond, objectAccess("203.0.113.66", "", "product", fmt.Sprintf("p-%d", i), ""))
		}
		// An office browsing the catalogue without logging in: 60
		// distinct products in a few minutes.
		for i := range 60 {
			tr.add(time.Duration(i)*3*time.Second, objectAccess("198.51.100.10", "", "product", fmt.Sprintf("p-%d", i), ""))
		}
		return tr.events("scra")
	}
}
