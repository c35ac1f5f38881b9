package metrics

import "github.com/google/wire"

// ProviderSet provides *Metrics. The injector supplies the Sources (the composition root
// builds them from the database pool, the post cache and the hasher).
var ProviderSet = wire.NewSet(New)
