import Basics
import Foundation
import Training

/// Keeps a poisoned update out of the shared model. It judges what every worker sees alike — the
/// all-reduced update of a round (DiLoCo's pseudo-gradient, DDP's gradient) — so that all
/// workers take the same decision without a word: an update that is not finite, or whose norm is
/// more than `factor` times the largest of the recent accepted ones (the largest, not the median:
/// norms grow during warmup), is rejected (the round is dropped: the shared model stays as it was;
/// DDP's step goes on without the gradient). A sum hides who poisoned it, so after a rejection
/// the workers tell each other the norm of their own contribution (`name`), which names a worker
/// whose contribution was not finite or stood out the same way; a worker named `maxOffences`
/// times stops. What this catches: a buggy worker (NaN, a learning rate of 1e9, a scaled update)
/// always; a worker that lies about its own norm is still rejected with its round, but not named.
public struct UpdateGuard: Sendable, Equatable {
    /// How many times the largest recent norm an update's may be before it is rejected (and how
    /// many times the others' median a worker's own norm may be before it is named).
    public var factor = 10.0
    /// Accepted norms remembered for the median.
    public var window = 8
    /// Accepted updates needed before norms are judged (until then only finiteness is).
    public var warmup = 3
    /// Times a worker may be named before it must stop.
    public var maxOffences = 3
    public private(set) var recentNorms: [Double] = []
    /// Times each worker (by ring position) was named.
    public private(set) var offences: [Int: Int] = [:]

    public init() {}

    /// Why an update was rejected.
    public enum Verdict: Sendable, Equatable {
        case accepted
        case notFinite
        case outlier(norm: Double, recentLargest: Double)

        public var isAccepted: Bool { self == .accepted }
    }

    /// Judges a round's all-reduced update; an accepted one joins the recent norms.
    public mutating func judge(_ update: UnsafeBufferPointer<Float>) -> Verdict {
        var sum = 0.0
        for x in update {
            guard x.isFinite else { return .notFinite }
            sum += Double(x) * Double(x)
        }
        let norm = sum.squareRoot()
        guard norm.isFinite else { return .notFinite }
        if recentNorms.count >= warmup, let largest = recentNorms.max(), norm > factor * largest {
            return .outlier(norm: norm, recentLargest: largest)
        }
        recentNorms.append(norm)
        if recentNorms.count > window { recentNorms.removeFirst() }
        return .accepted
    }

    /// The norm of this worker's own contribution as it tells the others (NaN when not finite).
    public static func norm(_ values: UnsafeBufferPointer<Float>) -> Float {
        var sum = 0.0
        for x in values { sum += Double(x) * Double(x) }
        return sum.isFinite ? Float(sum.squareRoot()) : .nan
    }

    /// The workers (ring positions) whose contribution norms `norms` name after a rejection: not
    /// finite, or more than `factor` times the median of the others'. Counts their offences.
    public mutating func name(_ norms: [Float]) -> [Int] {
        let named = norms.indices.filter { i in
            guard norms[i].isFinite else { return true }
            let others = norms.indices.filter { $0 != i }.map { Double(norms[$0]) }.filter(\.isFinite)
            let middle = median(others)
            guard middle > 0 else { return false }
            return Double(norms[i]) > factor * middle
        }
        for i in named { countOffence(i) }
        return named
    }

    /// Counts one offence of the worker at ring position `rank`.
    public mutating func countOffence(_ rank: Int) { offences[rank, default: 0] += 1 }

    /// Whether the worker at ring position `rank` was named too often to go on.
    public func mustStop(_ rank: Int) -> Bool { offences[rank, default: 0] >= maxOffences }
}

/// A fault injected on purpose, for tests and demos of the update guard: at round `round` this
/// worker's contribution becomes NaN, or is multiplied by `scale`.
public struct FaultInjection: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case nan
        case scale(Float)
    }
    public var kind: Kind
    public var round: Int

    public init(kind: Kind, round: Int) {
        self.kind = kind
        self.round = round
    }

    /// Parses `nan@ROUND` or `scale=FACTOR@ROUND` (rounds count from 1, as progress lines show them).
    public init(parsing text: String) throws {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, let round = Int(parts[1]), round >= 1 else {
            throw ConfigError(field: "--inject-fault", reason: "'\(text)': expected nan@ROUND or scale=FACTOR@ROUND, rounds from 1")
        }
        if parts[0] == "nan" {
            kind = .nan
        } else if parts[0].hasPrefix("scale="), let factor = Float(parts[0].dropFirst(6)), factor.isFinite {
            kind = .scale(factor)
        } else {
            throw ConfigError(field: "--inject-fault", reason: "'\(parts[0])': expected nan or scale=FACTOR")
        }
        self.round = round - 1
    }

    /// Spoils `values` as the fault says.
    public func apply(to values: UnsafeMutableBufferPointer<Float>) {
        switch kind {
        case .nan: for i in values.indices where i % 7 == 0 { values[i] = .nan }
        case .scale(let factor): for i in values.indices { values[i] *= factor }
        }
    }
}
