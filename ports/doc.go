// Package ports declares, as interfaces only, what the application needs from the outside
// world (driven ports: repositories, unit of work, cache, hasher, tokens, clock, ids, throttle)
// and what it offers to it (driving ports: the use-case services the HTTP adapter calls).
//
// Every implementation, driving or driven, lives under adapters/. Note that some well-known Go
// examples use "ports" for HTTP handlers; here ports are the interfaces between the layers.
package ports
