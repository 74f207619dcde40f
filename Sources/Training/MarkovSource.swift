import Foundation
import ModelCore

/// A seeded first-order Markov chain over `vocabulary` symbols whose entropy rate is known exactly.
///
/// Each state sends most of its probability to `branching` random successors (skewed weights) and
/// spreads `smoothing` uniformly over all symbols, so the chain is ergodic and its stationary
/// distribution unique. A model that learns the chain perfectly reaches a cross-entropy equal to
/// `entropyRate` (nats per token); that is what the convergence test checks.
public struct MarkovSource: Sendable {
    /// Number of symbols (token ids 0..<vocabulary).
    public let vocabulary: Int
    /// transition[i*V + j] = P(next = j | current = i).
    public let transition: [Double]
    /// The stationary distribution π (πP = π).
    public let stationary: [Double]
    /// Σᵢ πᵢ H(P(·|i)) in nats: the best achievable mean cross-entropy per token.
    public let entropyRate: Double
    private let cumulative: [Double]

    /// Builds the chain from its parameters; the same arguments always give the same chain.
    public init(vocabulary: Int, branching: Int, smoothing: Double, seed: UInt64) {
        precondition(vocabulary > 1 && (1...vocabulary).contains(branching) && smoothing > 0 && smoothing <= 1,
                     "[MarkovSource] invalid parameters \(vocabulary), \(branching), \(smoothing)")
        var rng = SeededGenerator(seed: seed)
        let v = vocabulary
        var p = [Double](repeating: smoothing / Double(v), count: v * v)
        for i in 0..<v {
            var successors = Array(0..<v)
            for k in 0..<branching { successors.swapAt(k, k + Int(rng.next() % UInt64(v - k))) }
            let weights = (0..<branching).map { _ in pow(rng.nextUniformDouble() + 0.05, 2) }
            let total = weights.reduce(0, +)
            for k in 0..<branching { p[i * v + successors[k]] += (1 - smoothing) * weights[k] / total }
        }
        var pi = [Double](repeating: 1 / Double(v), count: v)
        for _ in 0..<10_000 {
            var next = [Double](repeating: 0, count: v)
            for i in 0..<v { for j in 0..<v { next[j] += pi[i] * p[i * v + j] } }
            let change = zip(next, pi).map { abs($0 - $1) }.max() ?? 0
            pi = next
            if change < 1e-15 { break }
        }
        var h = 0.0
        for i in 0..<v {
            var rowEntropy = 0.0
            for j in 0..<v where p[i * v + j] > 0 { rowEntropy -= p[i * v + j] * log(p[i * v + j]) }
            h += pi[i] * rowEntropy
        }
        var cum = p
        for i in 0..<v { for j in 1..<v { cum[i * v + j] += cum[i * v + j - 1] } }
        self.vocabulary = v
        self.transition = p
        self.stationary = pi
        self.entropyRate = h
        self.cumulative = cum
    }

    /// The source a data config describes.
    public init(_ config: DataConfig) {
        self.init(vocabulary: config.markovVocabulary, branching: config.markovBranching,
                  smoothing: config.markovSmoothing, seed: config.markovSeed)
    }

    /// `count` tokens of the chain, starting from a state drawn from the stationary distribution.
    public func generate(count: Int, seed: UInt64) -> [Int32] {
        var rng = SeededGenerator(seed: seed)
        var out = [Int32](repeating: 0, count: count)
        var state = sample(row: nil, u: rng.nextUniformDouble())
        for i in 0..<count {
            out[i] = Int32(state)
            state = sample(row: state, u: rng.nextUniformDouble())
        }
        return out
    }

    private func sample(row: Int?, u: Double) -> Int {
        let v = vocabulary
        guard let row else {
            var acc = 0.0
            for j in 0..<v {
                acc += stationary[j]
                if u < acc { return j }
            }
            return v - 1
        }
        let base = row * v
        var lo = 0, hi = v - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if u < cumulative[base + mid] { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
