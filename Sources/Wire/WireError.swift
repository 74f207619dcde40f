import Basics

/// Why a frame, handshake or payload from a peer was rejected. Each case names what was wrong.
public enum WireError: Error, Equatable, CustomStringConvertible {
    case badMagic(UInt32)
    case unsupportedVersion(UInt8)
    case unknownMessageType(UInt8)
    case unknownCodec(UInt8)
    case reservedFlags(UInt8)
    case payloadTooLarge(length: Int, limit: Int)
    case payloadSizeMismatch(codec: String, count: Int, expected: Int, actual: Int)
    case rangeTooLarge(count: UInt64, limit: Int)
    case checksumMismatch(expected: UInt32, actual: UInt32)
    case malformedPayload(String)
    case truncated(have: Int, need: Int)
    case unexpectedMessage(MessageType, state: String)

    public var description: String {
        switch self {
        case let .badMagic(m): return "frame starts with 0x\(String(m, radix: 16)), not Tributary's magic: not a Tributary peer or a corrupted stream"
        case let .unsupportedVersion(v): return "frame has protocol version \(v); this build speaks version \(FrameHeader.currentVersion)"
        case let .unknownMessageType(t): return "unknown message type \(t)"
        case let .unknownCodec(c): return "unknown codec id \(c)"
        case let .reservedFlags(f): return "reserved flag bits set (0x\(String(f, radix: 16)))"
        case let .payloadTooLarge(length, limit): return "payload of \(length) bytes exceeds the \(limit)-byte frame limit"
        case let .payloadSizeMismatch(codec, count, expected, actual):
            return "\(codec) payload for \(count) values must be \(expected) bytes, got \(actual)"
        case let .rangeTooLarge(count, limit): return "range of \(count) values exceeds the limit of \(limit)"
        case let .checksumMismatch(expected, actual):
            return "CRC32C mismatch (frame says 0x\(String(expected, radix: 16)), computed 0x\(String(actual, radix: 16))): corrupted in transit"
        case let .malformedPayload(why): return "malformed payload: \(why)"
        case let .truncated(have, need): return "stream ended inside a frame: \(have) of \(need) bytes"
        case let .unexpectedMessage(type, state): return "unexpected \(type) message while \(state)"
        }
    }
}
