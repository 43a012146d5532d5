import Testing

/// The suites that build network-namespace labs (cluster members, conntrackd, bridges) run one at a
/// time: four labs at once on two cores starved each other's agents for minutes, and the timings they
/// check (dead timers, failovers) are the members' own, not the test machine's.
@Suite("Network-namespace labs, one at a time", .serialized, .endToEndSlot)
enum NamespaceLabs {}
