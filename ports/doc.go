// Package ports declares, as interfaces only, the shared kernel's ports: the storage scope
// and unit of work every context's repositories run in, the durable job queue, the clock and
// ids, the attempt throttle, the authenticator behind every credential scheme, and the hook
// every context that holds users' data implements (UserDataOwner). Each bounded context's
// own ports (its repositories and what it offers) live in a sub-package named after it
// (ports/accounts, ports/posts), which may import this one but never another context's.
//
// Every implementation, driving or driven, lives under adapters/. Note that some well-known Go
// examples use "ports" for HTTP handlers; here ports are the interfaces between the layers.
package ports
