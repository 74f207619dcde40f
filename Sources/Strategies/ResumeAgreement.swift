/// Where workers go on from when a run resumes, after a loss or when a worker joins: the newest
/// progress that every worker holding state has, and the worker whose state the others without
/// any take. Every worker computes it from the same offers, so all agree.
public struct ResumeAgreement: Sendable, Equatable {
    /// One worker's offer: the newest progress it holds (0: none) and the ring position of the
    /// state source its view of the ring names (nil: none named).
    public struct Offer: Sendable, Equatable {
        public var progress: Int
        public var namedSource: Int?

        public init(progress: Int, namedSource: Int?) {
            self.progress = progress
            self.namedSource = namedSource
        }

        /// Values an offer takes in the exchange.
        static let width = 3

        /// As whole floats, for an exact exchange.
        var values: [Float] {
            let (low, high) = ExactInteger.split(progress)
            return [low, high, Float((namedSource ?? -1) + 1)]
        }

        /// Reads an offer from the exchange; a broken peer's values throw.
        init(values: ArraySlice<Float>) throws {
            let v = Array(values)
            guard v.count == Self.width, let progress = ExactInteger.join(v[0], v[1]), let source = ExactInteger.whole(v[2]), source >= 0 else {
                throw StrategyError.badPeerValues("a resume offer arrived as \(v)")
            }
            self.init(progress: progress, namedSource: source == 0 ? nil : source - 1)
        }
    }

    /// The progress every worker goes on from: the lowest newest progress among those with any.
    public var progress: Int
    /// Ring position of the worker whose state the workers without any take.
    public var source: Int
    /// Whether some worker holds no state (then the source hands its state around).
    public var someHaveNone: Bool

    /// Nil when no worker holds any state (a fresh start). Position 0's view of the ring names
    /// the source, so that all take the same even if their views differed; a named worker
    /// without state gives way to the first one with some.
    public init?(offers: [Offer]) {
        let held = offers.map(\.progress)
        guard let lowest = held.filter({ $0 > 0 }).min(), let first = held.firstIndex(where: { $0 > 0 }) else { return nil }
        let named = offers[0].namedSource
        progress = lowest
        source = named.flatMap { held.indices.contains($0) && held[$0] > 0 ? $0 : nil } ?? first
        someHaveNone = held.contains(0)
    }
}
