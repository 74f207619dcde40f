import Foundation

/// 64-bit FNV-1a: a small, stable hash for identities (layouts, results, content), not for security.
public struct FNV1a: Sendable {
    /// The hash of everything added so far.
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    /// Mixes in `bytes`.
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    }

    /// Mixes in `bytes` eight at a time (the rest one by one): another hash than `add`'s, for large
    /// buffers compared only with hashes made the same way (a model's parameters every round), and
    /// about eight times faster. Each step is a bijection of the state, so two buffers that differ
    /// in one word always hash differently.
    public mutating func addWide(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        while i + 8 <= bytes.count {
            value = (value ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x0000_0100_0000_01b3
            i += 8
        }
        add(UnsafeRawBufferPointer(rebasing: bytes[i...]))
    }

    /// Mixes in the UTF-8 bytes of `text`.
    public mutating func add(_ text: String) {
        var t = text
        t.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }
}

/// A 64-bit hash as 16 hex digits, the way layout and parameter hashes are written and compared.
public func hex16(_ x: UInt64) -> String { String(format: "%016llx", x) }
