/// Where workers go on from when a run resumes, after a loss or when a worker joins: the newest
/// progress that every worker holding state has, and the worker whose state the others without
/// any take. Every worker computes it from the same offers, so all agree.
public struct ResumeAgreement: Sendable, Equatable {
    /// One worker's offer: the progresses it can go back to (memory and disk, newest first; empty:
    /// none) and the ring position of the state source its view of the ring names (nil: none).
    public struct Offer: Sendable, Equatable {
        public var held: [Int]
        public var namedSource: Int?

        /// Progresses an offer carries at most (the newest).
        public static let maxHeld = 8

        public init(held: [Int], namedSource: Int?) {
            self.held = Array(Set(held.filter { $0 > 0 }).sorted(by: >).prefix(Self.maxHeld))
            self.namedSource = namedSource
        }

        /// An offer of one progress (0: none).
        public init(progress: Int, namedSource: Int?) { self.init(held: [progress], namedSource: namedSource) }

        /// The newest progress it holds; 0 for none.
        public var newest: Int { held.first ?? 0 }

        /// Values an offer takes in the exchange: a count, each progress as two exact floats, the source.
        static let width = 2 + 2 * maxHeld

        /// As whole floats, for an exact exchange.
        var values: [Float] {
            var v = [Float(held.count)]
            for i in 0..<Self.maxHeld {
                let (low, high) = ExactInteger.split(i < held.count ? held[i] : 0)
                v += [low, high]
            }
            return v + [Float((namedSource ?? -1) + 1)]
        }

        /// Reads an offer from the exchange; a broken peer's values throw.
        init(values: ArraySlice<Float>) throws {
            let v = Array(values)
            guard v.count == Self.width, let count = ExactInteger.whole(v[0]), (0...Self.maxHeld).contains(count),
                  let source = ExactInteger.whole(v[v.count - 1]), source >= 0 else {
                throw StrategyError.badPeerValues("a resume offer arrived as \(v)")
            }
            let held = try (0..<count).map { i in
                guard let p = ExactInteger.join(v[1 + 2 * i], v[2 + 2 * i]), p > 0 else {
                    throw StrategyError.badPeerValues("a resume offer arrived as \(v)")
                }
                return p
            }
            self.init(held: held, namedSource: source == 0 ? nil : source - 1)
        }
    }

    /// The progress every worker goes on from: the lowest newest progress that every worker whose
    /// newest reaches it can go back to; the workers behind it (a worker that was frozen, say,
    /// and came back after the others went on) take the state as if they had none.
    public var progress: Int
    /// Ring position of the worker whose state the workers without any take.
    public var source: Int
    /// Whether some worker does not hold `progress` (then the source hands its state around).
    public var someHaveNone: Bool

    /// Nil when no worker holds any state (a fresh start). Position 0's view of the ring names
    /// the source, so that all take the same even if their views differed; a named worker
    /// without the agreed state gives way to the first one with it.
    public init?(offers: [Offer]) {
        let newest = offers.map(\.newest)
        let candidates = Set(newest.filter { $0 > 0 }).sorted()
        guard !candidates.isEmpty else { return nil }
        // The largest candidate is always held by its owners, so one is found.
        let agreed = candidates.first { p in offers.indices.allSatisfy { newest[$0] < p || offers[$0].held.contains(p) } }!
        let holders = offers.indices.filter { offers[$0].held.contains(agreed) }
        progress = agreed
        source = offers[0].namedSource.flatMap { holders.contains($0) ? $0 : nil } ?? holders[0]
        someHaveNone = holders.count < offers.count
    }
}
