package kinesis

// AggregateForTest builds a KPL-aggregated record (for the package's
// external tests).
var AggregateForTest = Aggregate
