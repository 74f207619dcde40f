import Basics
import TensorCore
import NIOCore

/// What a frame carries.
public enum MessageType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Opening message of a connection: `Hello` in the payload.
    case hello = 1
    /// The peer accepted our hello: its own `Hello` in the payload.
    case welcome = 2
    /// The peer refused our hello: a UTF-8 reason in the payload; the connection then closes.
    case refuse = 3
    /// A range of the flat vector, encoded by the frame's codec.
    case data = 4
    /// Bandwidth probe: an arbitrary payload the receiver answers with `probeReply`.
    case probe = 5
    /// Answer to a probe: empty payload; `count` echoes the probe's payload size.
    case probeReply = 6
    /// Orderly goodbye; the connection closes after it.
    case goodbye = 7
    /// A chunk of a worker's state sent straight to a worker that has none (`StateDownload`):
    /// values `offset..<offset+count`, fp32.
    case stateChunk = 8
    /// The end of a state download: the total values and the CRC32C of all their bytes.
    case stateEnd = 9

    public var description: String {
        switch self {
        case .hello: "hello"
        case .welcome: "welcome"
        case .refuse: "refuse"
        case .data: "data"
        case .probe: "probe"
        case .probeReply: "probe-reply"
        case .goodbye: "goodbye"
        case .stateChunk: "state-chunk"
        case .stateEnd: "state-end"
        }
    }
}

/// The fixed 52-byte header of every frame (big-endian on the wire).
///
/// | bytes | field |
/// |---|---|
/// | 4 | magic "TRIB" |
/// | 1 | protocol version |
/// | 1 | message type |
/// | 1 | codec id |
/// | 1 | flags (reserved, 0) |
/// | 8 | run id |
/// | 8 | round |
/// | 4 | sender rank |
/// | 8 | range offset (elements) |
/// | 8 | range count (elements) |
/// | 4 | payload length (bytes) |
/// | 4 | CRC32C of the preceding 48 header bytes and the payload |
public struct FrameHeader: Sendable, Hashable {
    /// "TRIB".
    public static let magic: UInt32 = 0x5452_4942
    /// The protocol version this build speaks.
    /// 2: the hello carries the ring epoch. 3: state downloads (`stateChunk`, `stateEnd`).
    public static let currentVersion: UInt8 = 3
    /// Size of the header in bytes.
    public static let size = 52

    public var version: UInt8 = FrameHeader.currentVersion
    public var type: MessageType
    public var codec: CodecID
    public var runID: UInt64
    public var round: UInt64
    public var sender: UInt32
    /// First element of the range of the flat vector this frame is about.
    public var offset: UInt64
    /// Number of elements in the range.
    public var count: UInt64
    /// Bytes of payload that follow the header.
    public var payloadLength: UInt32

    public init(type: MessageType, codec: CodecID = .fp32, runID: UInt64, round: UInt64 = 0, sender: UInt32,
                offset: UInt64 = 0, count: UInt64 = 0, payloadLength: UInt32 = 0) {
        self.type = type
        self.codec = codec
        self.runID = runID
        self.round = round
        self.sender = sender
        self.offset = offset
        self.count = count
        self.payloadLength = payloadLength
    }

    /// Writes the first 48 bytes (everything but the checksum).
    func writeFields(to buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.magic)
        buffer.writeInteger(version)
        buffer.writeInteger(type.rawValue)
        buffer.writeInteger(codec.rawValue)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(runID)
        buffer.writeInteger(round)
        buffer.writeInteger(sender)
        buffer.writeInteger(offset)
        buffer.writeInteger(count)
        buffer.writeInteger(payloadLength)
    }

    /// Parses and validates the 48 field bytes at the reader index of `buffer` without moving it.
    static func peekFields(in buffer: ByteBuffer) throws -> FrameHeader? {
        guard buffer.readableBytes >= size else { return nil }
        let i = buffer.readerIndex
        let magic = buffer.getInteger(at: i, as: UInt32.self)!
        guard magic == Self.magic else { throw WireError.badMagic(magic) }
        let version = buffer.getInteger(at: i + 4, as: UInt8.self)!
        let rawType = buffer.getInteger(at: i + 5, as: UInt8.self)!
        guard let type = MessageType(rawValue: rawType) else { throw WireError.unknownMessageType(rawType) }
        // A hello or refusal from another version still gets through, so that the handshake can
        // tell the peer which versions disagree instead of dropping the connection silently.
        guard version == currentVersion || type == .hello || type == .refuse else {
            throw WireError.unsupportedVersion(version)
        }
        let rawCodec = buffer.getInteger(at: i + 6, as: UInt8.self)!
        guard let codec = CodecID(rawValue: rawCodec) else { throw WireError.unknownCodec(rawCodec) }
        let flags = buffer.getInteger(at: i + 7, as: UInt8.self)!
        guard flags == 0 else { throw WireError.reservedFlags(flags) }
        var header = FrameHeader(
            type: type, codec: codec,
            runID: buffer.getInteger(at: i + 8, as: UInt64.self)!,
            round: buffer.getInteger(at: i + 16, as: UInt64.self)!,
            sender: buffer.getInteger(at: i + 24, as: UInt32.self)!,
            offset: buffer.getInteger(at: i + 28, as: UInt64.self)!,
            count: buffer.getInteger(at: i + 36, as: UInt64.self)!,
            payloadLength: buffer.getInteger(at: i + 44, as: UInt32.self)!)
        header.version = version
        return header
    }
}

/// One message between peers: a header and its payload.
public struct Frame: Sendable, Equatable {
    public var header: FrameHeader
    /// The payload bytes (`header.payloadLength` of them).
    public var payload: ByteBuffer

    /// A frame whose header's payload length is set from `payload`.
    public init(header: FrameHeader, payload: ByteBuffer) {
        var h = header
        h.payloadLength = UInt32(payload.readableBytes)
        self.header = h
        self.payload = payload
    }

    /// Appends the encoded frame (header, checksum, payload) to `buffer`.
    public func write(to buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        header.writeFields(to: &buffer)
        let crc = buffer.withUnsafeReadableBytes { all in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: all[(start - buffer.readerIndex)...]))
        }
        let withPayload = payload.withUnsafeReadableBytes { CRC32C.checksum($0, continuing: crc) }
        buffer.writeInteger(withPayload)
        var p = payload
        buffer.writeBuffer(&p)
    }
}
