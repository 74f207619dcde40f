/// Which encoding a data frame's payload uses, with its parameters, in one byte.
///
/// | raw | codec |
/// |---|---|
/// | 0x01 | fp32 |
/// | 0x02 | fp16 |
/// | 0x03 | bf16 |
/// | 0x10+b | int8 per block of 2^(b+5) values (b < 16) |
/// | 0x20+b | int4 per block of 2^(b+5) values (b < 16) |
/// | 0x80 + 8·j + (bits−2) | top-k of every 4096 values, k = 2^(j+3) (j < 8: 8…1024), values at 2…8 bits |
public struct CodecID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8

    /// nil for bytes that name no codec.
    public init?(rawValue: UInt8) {
        switch rawValue {
        case 0x01...0x03, 0x10...0x2F: break
        case 0x80...0xBF where rawValue & 0x07 <= 6: break
        default: return nil
        }
        self.rawValue = rawValue
    }

    private init(unchecked: UInt8) { rawValue = unchecked }

    public static let fp32 = CodecID(unchecked: 0x01)
    public static let fp16 = CodecID(unchecked: 0x02)
    public static let bf16 = CodecID(unchecked: 0x03)

    /// int8 with one scale per `block` values; `block` a power of two in 32…2^20.
    public static func int8(block: Int = 4096) -> CodecID? {
        blockExponent(block).map { CodecID(unchecked: 0x10 + $0) }
    }

    /// int4 with one scale per `block` values; `block` a power of two in 32…2^20.
    public static func int4(block: Int = 4096) -> CodecID? {
        blockExponent(block).map { CodecID(unchecked: 0x20 + $0) }
    }

    /// k of every 4096 values (k a power of two in 8…1024), each value at `bits` (2…8) bits.
    public static func topK(k: Int = 64, bits: Int = 2) -> CodecID? {
        guard (2...8).contains(bits), k >= 8, k <= 1024, k & (k - 1) == 0 else { return nil }
        let j = k.trailingZeroBitCount - 3
        return CodecID(unchecked: UInt8(0x80 + 8 * j + bits - 2))
    }

    private static func blockExponent(_ block: Int) -> UInt8? {
        guard block >= 32, block <= 1 << 20, block & (block - 1) == 0 else { return nil }
        return UInt8(block.trailingZeroBitCount - 5)
    }

    /// Whether the codec keeps only some values (top-k): partial sums must not be re-encoded
    /// with it, so collectives gather each worker's encoding instead.
    public var isSparse: Bool { rawValue >= 0x80 }

    /// The codec this id names.
    public var codec: any VectorCodec {
        switch rawValue {
        case 0x01: return Float32Codec()
        case 0x02: return Float16Codec()
        case 0x03: return BFloat16Codec()
        case 0x10...0x1F: return BlockQuantizedCodec(bits: 8, block: 1 << Int(rawValue - 0x10 + 5))
        case 0x20...0x2F: return BlockQuantizedCodec(bits: 4, block: 1 << Int(rawValue - 0x20 + 5))
        default:
            let j = Int((rawValue - 0x80) >> 3)
            return TopKCodec(k: 1 << (j + 3), bits: Int(rawValue & 0x07) + 2)
        }
    }

    /// Short name, e.g. `int8/4096` or `top64of4096/2bit`.
    public var name: String { codec.name }
    public var description: String { name }

    /// Parses a name as users write it: fp32, fp16, bf16, int8, int8/256, int4, int4/1024,
    /// topk, topk64, topk64/2bit.
    public init?(name: String) {
        let parts = name.lowercased().split(separator: "/").map(String.init)
        guard let head = parts.first, parts.count <= 2 else { return nil }
        let tail = parts.count == 2 ? parts[1] : nil
        switch head {
        case "fp32" where tail == nil: self = .fp32
        case "fp16" where tail == nil: self = .fp16
        case "bf16" where tail == nil: self = .bf16
        case "int8", "int4":
            let block = tail.map { Int($0) } ?? 4096
            guard let block, let id = head == "int8" ? CodecID.int8(block: block) : CodecID.int4(block: block) else { return nil }
            self = id
        default:
            guard head.hasPrefix("topk") else { return nil }
            let k = head == "topk" ? 64 : Int(head.dropFirst(4))
            var bits: Int? = 2
            if let tail {
                guard tail.hasSuffix("bit") else { return nil }
                bits = Int(tail.dropLast(3))
            }
            guard let k, let bits, let id = CodecID.topK(k: k, bits: bits) else { return nil }
            self = id
        }
    }
}
