import Foundation

/// A fixed-size, 64-byte aligned, zero-initialised buffer of `Float` that owns its memory.
///
/// Parameters, gradients, optimizer moments and activations all live in slabs, so that whole-model
/// operations (AdamW, clipping, checkpoints, collectives) are loops over `0..<count`.
/// Access is not synchronised: a slab is owned by one training thread at a time, and kernels that
/// split work across threads write disjoint ranges.
public final class FloatSlab: @unchecked Sendable {
    /// Number of `Float` elements.
    public let count: Int
    /// Base address; valid for the slab's lifetime.
    public let base: UnsafeMutablePointer<Float>

    /// Allocates `count` zeroed floats.
    public init(count: Int) {
        precondition(count >= 0, "[FloatSlab] negative count \(count)")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }

    /// Copies `values` into a new slab.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let s = src.baseAddress { base.update(from: s, count: values.count) }
        }
    }

    deinit { base.deallocate() }

    /// A pointer to element `offset`.
    @inline(__always)
    public func pointer(at offset: Int) -> UnsafeMutablePointer<Float> {
        base + offset
    }

    /// The whole slab as a buffer pointer.
    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: base, count: count)
    }

    /// Sets every element to zero.
    public func zero() {
        base.update(repeating: 0, count: count)
    }

    /// Copies the elements into an array (for tests and small exports).
    public func toArray() -> [Float] {
        Array(UnsafeBufferPointer(start: base, count: count))
    }

    /// Copies all elements from another slab of the same size.
    public func copy(from other: FloatSlab) {
        precondition(other.count == count, "[FloatSlab] copy size mismatch: \(other.count) vs \(count)")
        base.update(from: other.base, count: count)
    }
}
