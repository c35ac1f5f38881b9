package httpapi

import (
	"net/netip"

	"github.com/gin-gonic/gin"
)

// ClientAddress is the caller's address as the per-address throttles and the hasher's fair
// share count it: the address gin resolves (X-Forwarded-For only from the trusted proxies),
// with an IPv6 address reduced to its /64 network. One IPv6 host is given a /64 (or more) by
// its provider and may pick any address in it, so counting IPv6 addresses one by one would
// give each client 2^64 budgets: failed logins, signups and hashing slots per address would
// bound nothing. An IPv4 address, written as such or mapped into IPv6, is kept whole.
func ClientAddress(c *gin.Context) string {
	return throttleAddress(c.ClientIP())
}

// throttleAddress reduces an address to what ClientAddress counts (see there); text that is
// not an address (gin found none) is kept as it is.
func throttleAddress(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
