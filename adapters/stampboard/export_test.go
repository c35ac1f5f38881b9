package stampboard

// BarrierFresh is how long after a completed barrier round trip reads are let through without
// one of their own (barrierFresh), for the tests of package stampboard_test.
const BarrierFresh = barrierFresh
