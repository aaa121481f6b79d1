package demo

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// internalDNS returns a resolver that plays the DNS of the shop's network:
// it answers the names in hosts (lower case, without the final dot) with
// their IPv4 address, as an internal DNS server answers for the services of
// a private network, and asks the system's name server about every other
// name. The WAF at the edge cannot know which names are internal: that is
// what makes an internal host name the SSRF that gets past it.
func internalDNS(hosts map[string]netip.Addr) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		// The resolver talks to the connection Dial returns as to a DNS
		// server over TCP (it is not a net.PacketConn): a two-byte length,
		// then the message.
		Dial: func(ctx context.Context, _, server string) (net.Conn, error) {
			client, conn := net.Pipe()
			go serveDNS(conn, server, hosts)
			return client, nil
		},
	}
}

// serveDNS answers the queries that arrive on conn, then closes it.
func serveDNS(conn net.Conn, server string, hosts map[string]netip.Addr) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	for {
		query, err := readDNS(conn)
		if err != nil {
			return
		}
		resp := answerDNS(query, hosts)
		if resp == nil {
			if resp, err = forwardDNS(server, query); err != nil {
				return
			}
		}
		if _, err := conn.Write(binary.BigEndian.AppendUint16(nil, uint16(len(resp)))); err != nil {
			return
		}
		if _, err := conn.Write(resp); err != nil {
			return
		}
	}
}

func readDNS(r io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(n[:]))
	_, err := io.ReadFull(r, msg)
	return msg, err
}

// answerDNS answers a query about one of hosts: its address for type A,
// no records for other types. It returns nil for a query about another
// name, or one it cannot read.
func answerDNS(query []byte, hosts map[string]netip.Addr) []byte {
	const header = 12
	if len(query) < header || binary.BigEndian.Uint16(query[4:]) != 1 { // QDCOUNT
		return nil
	}
	var labels []string
	i := header
	for {
		if i >= len(query) {
			return nil
		}
		n := int(query[i])
		i++
		if n == 0 {
			break
		}
		if n > 63 || i+n > len(query) {
			return nil
		}
		labels = append(labels, string(query[i:i+n]))
		i += n
	}
	if i+4 > len(query) {
		return nil
	}
	addr, ok := hosts[strings.ToLower(strings.Join(labels, "."))]
	if !ok || !addr.Is4() {
		return nil
	}
	qtype, qclass := binary.BigEndian.Uint16(query[i:]), binary.BigEndian.Uint16(query[i+2:])
	resp := make([]byte, header, header+i+4+16)
	copy(resp, query[:2])                 // ID
	resp[2] = 0x80 | 0x04 | query[2]&0x01 // QR, AA, RD as asked
	resp[3] = 0x80                        // RA, no error
	binary.BigEndian.PutUint16(resp[4:], 1)
	resp = append(resp, query[header:i+4]...) // the question
	if qtype == 1 && qclass == 1 {            // A, IN
		binary.BigEndian.PutUint16(resp[6:], 1)
		resp = append(resp, 0xc0, header, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4) // the question's name, A, IN, TTL 60 s, 4 bytes
		resp = append(resp, addr.AsSlice()...)
	}
	return resp
}

// forwardDNS asks the system's name server, over TCP.
func forwardDNS(server string, query []byte) ([]byte, error) {
	c, err := net.DialTimeout("tcp", server, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(query))), query...)); err != nil {
		return nil, err
	}
	return readDNS(c)
}
