import ModelCore

/// Central finite differences of a scalar function of a double vector, entry by entry.
///
/// `step` 1e-6 gives about 1e-9 absolute error for the smooth functions here.
public func finiteDifferenceGradient(at x: [Double], step: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var probe = x
    return (0..<x.count).map { i in
        probe[i] = x[i] + step
        let plus = f(probe)
        probe[i] = x[i] - step
        let minus = f(probe)
        probe[i] = x[i]
        return (plus - minus) / (2 * step)
    }
}

/// Σ weights[i]·values[i]: turns a tensor output into the scalar a gradient check differentiates.
public func weightedSum(_ values: [Double], _ weights: [Double]) -> Double {
    zip(values, weights).reduce(0) { $0 + $1.0 * $1.1 }
}

/// max |a − b| / max(max |b|, floor): an error relative to the tensor's scale.
public func scaledError(_ actual: [Float], _ expected: [Double], floor: Double = 1e-6) -> Double {
    precondition(actual.count == expected.count, "[scaledError] \(actual.count) vs \(expected.count) elements")
    var diff = 0.0, scale = floor
    for (a, e) in zip(actual, expected) {
        diff = max(diff, abs(Double(a) - e))
        scale = max(scale, abs(e))
    }
    return diff / scale
}

/// Seeded random values in [-scale, scale), as Float and as the same values in Double.
public func randomValues(_ count: Int, scale: Float = 1, rng: inout SeededGenerator) -> (floats: [Float], doubles: [Double]) {
    let f = (0..<count).map { _ in (rng.nextUniformFloat() * 2 - 1) * scale }
    return (f, f.map(Double.init))
}
