package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr finds the address a request came from. X-Forwarded-For is
// believed only as far as it was written by trusted proxies: walking it from
// the right, the first address that is not a trusted proxy is the client.
// Otherwise anyone could pick their own address and escape per-address rate
// limits.
type clientAddr struct {
	trusted []netip.Prefix
}

func newClientAddr(cidrs []string) clientAddr {
	var c clientAddr
	for _, s := range cidrs {
		if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
			c.trusted = append(c.trusted, p)
		}
	}
	return c
}

func (c clientAddr) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

func (c clientAddr) of(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !c.isTrusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer.String()
		}
		if !c.isTrusted(a) {
			return a.Unmap().String()
		}
	}
	return peer.String()
}

// base returns the scheme and host the client used, believing
// X-Forwarded-Proto only from a trusted proxy.
func (c clientAddr) base(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if peer, err := netip.ParseAddr(host); err == nil && c.isTrusted(peer) && r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "https"
		}
	}
	return scheme + "://" + r.Host
}
