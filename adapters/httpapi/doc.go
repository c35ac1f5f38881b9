// Package httpapi is the driving HTTP adapter: a Gin router whose handlers turn requests into
// calls on the use-case ports (ports.AuthService, ports.PostService, ports.AdminService) and
// their results into the JSON documents of the API contract.
//
// Handlers never see the application or storage packages, only the port interfaces, and every
// error reaches the client through one mapper (problem.go) that writes RFC 9457 problem
// documents with a stable code.
package httpapi
