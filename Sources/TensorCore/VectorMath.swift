#if arch(x86_64) && os(Linux)
import _Builtin_intrinsics.intel
#endif

/// Vector width used by the elementwise kernels.
public typealias FloatVector = SIMD16<Float>

// The standard library implements `pointwiseMax`, `clamped` and `squareRoot` on SIMD vectors as
// loops over lanes, which do not vectorize; these helpers compile to single AVX instructions.

/// Lane-wise maximum (compare and blend).
@inline(__always)
public func vectorMax(_ a: FloatVector, _ b: FloatVector) -> FloatVector {
    a.replacing(with: b, where: a .< b)
}

/// Lane-wise minimum (compare and blend).
@inline(__always)
public func vectorMin(_ a: FloatVector, _ b: FloatVector) -> FloatVector {
    a.replacing(with: b, where: b .< a)
}

/// Lane-wise square root.
@inline(__always)
public func vectorSqrt(_ x: FloatVector) -> FloatVector {
    #if arch(x86_64) && os(Linux)
    return FloatVector(lowHalf: _mm256_sqrt_ps(x.lowHalf), highHalf: _mm256_sqrt_ps(x.highHalf))
    #else
    return x.squareRoot()
    #endif
}

/// e^x for sixteen lanes at once (Cephes polynomial, about 2 ulp on [-87.33, 88.3]).
///
/// Inputs are clamped to the finite range of `Float`, so very negative inputs give a tiny positive
/// number rather than a denormal, and very large ones a large finite value.
@inline(__always)
public func vectorExp(_ input: FloatVector) -> FloatVector {
    let x = vectorMin(vectorMax(input, FloatVector(repeating: -87.33)), FloatVector(repeating: 88.3))
    // Round x*log2(e) to the nearest integer with the 1.5*2^23 trick: the integer lands in the low
    // mantissa bits of `shifted`, which also gives us 2^n without a float-to-int conversion.
    let magic = FloatVector(repeating: 12_582_912)
    let shifted = magic.addingProduct(x, FloatVector(repeating: 1.442_695_04))
    let n = shifted - magic
    var r = x.addingProduct(n, FloatVector(repeating: -0.693_359_375))
    r = r.addingProduct(n, FloatVector(repeating: 2.121_944_4e-4))
    var p = FloatVector(repeating: 1.987_569_15e-4)
    p = FloatVector(repeating: 1.398_199_950_7e-3).addingProduct(p, r)
    p = FloatVector(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
    p = FloatVector(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
    p = FloatVector(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
    p = FloatVector(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
    let y = (r + 1).addingProduct(p, r * r)
    let shiftedBits = unsafeBitCast(shifted, to: SIMD16<Int32>.self)
    let exponent = (shiftedBits &- 0x4B40_0000) &<< 23
    let scale = unsafeBitCast(exponent &+ 0x3F80_0000, to: FloatVector.self)
    return y * scale
}

/// tanh(x) for sixteen lanes, from `vectorExp`; absolute error below 1e-7.
@inline(__always)
public func vectorTanh(_ x: FloatVector) -> FloatVector {
    let e = vectorExp(x + x)
    return 1 - 2 / (e + 1)
}

/// Loads up to 16 floats from `p`, padding the missing lanes with `fill`.
@inline(__always)
public func loadPartial(_ p: UnsafePointer<Float>, count: Int, fill: Float = 0) -> FloatVector {
    var v = FloatVector(repeating: fill)
    for i in 0..<count { v[i] = p[i] }
    return v
}

/// Stores the first `count` lanes of `v` to `p`.
@inline(__always)
public func storePartial(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { p[i] = v[i] }
}

/// Loads 16 floats from `p` (no alignment needed).
@inline(__always)
public func loadVector(_ p: UnsafePointer<Float>) -> FloatVector {
    UnsafeRawPointer(p).loadUnaligned(as: FloatVector.self)
}

/// Stores 16 floats to `p` (no alignment needed).
@inline(__always)
public func storeVector(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: FloatVector.self)
}

/// Sum of x[i]*y[i] over `count` elements, in a fixed order (16 lane partials, then lanes in order).
@inline(__always)
public func dotProduct(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
    var acc = FloatVector(repeating: 0)
    var i = 0
    while i &+ 16 <= count {
        acc = acc.addingProduct(loadVector(x + i), loadVector(y + i))
        i &+= 16
    }
    if i < count {
        acc = acc.addingProduct(loadPartial(x + i, count: count &- i), loadPartial(y + i, count: count &- i))
    }
    return acc.sum()
}

/// Sum of `count` floats in a fixed order.
@inline(__always)
public func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var acc = FloatVector(repeating: 0)
    var i = 0
    while i &+ 16 <= count {
        acc += loadVector(x + i)
        i &+= 16
    }
    if i < count { acc += loadPartial(x + i, count: count &- i) }
    return acc.sum()
}
