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

    /// Mixes in the UTF-8 bytes of `text`.
    public mutating func add(_ text: String) {
        var t = text
        t.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }
}

/// A 64-bit hash as 16 hex digits, the way layout and parameter hashes are written and compared.
public func hex16(_ x: UInt64) -> String { String(format: "%016llx", x) }
