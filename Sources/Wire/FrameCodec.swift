import Basics
import TensorCore
import NIOCore

/// Limits on what a peer may send; everything read from the network is bounded by these.
public struct FrameLimits: Sendable, Hashable {
    /// Largest payload accepted, in bytes.
    public var maxPayloadBytes: Int
    /// Largest element range a frame may describe.
    public var maxRangeCount: Int

    public init(maxPayloadBytes: Int = 16 << 20, maxRangeCount: Int = 1 << 32) {
        self.maxPayloadBytes = maxPayloadBytes
        self.maxRangeCount = maxRangeCount
    }
}

/// Splits a byte stream into validated frames; throws `WireError` on the first bad one.
///
/// The payload length is checked against the limit as soon as the header arrives, so a hostile
/// length never makes the decoder wait for, or buffer, more than `maxPayloadBytes`.
public struct FrameDecoder: ByteToMessageDecoder, NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = Frame

    public let limits: FrameLimits

    public init(limits: FrameLimits = FrameLimits()) {
        self.limits = limits
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> Frame? {
        guard let header = try FrameHeader.peekFields(in: buffer) else { return nil }
        let length = Int(header.payloadLength)
        guard length <= limits.maxPayloadBytes else {
            throw WireError.payloadTooLarge(length: length, limit: limits.maxPayloadBytes)
        }
        guard header.count <= UInt64(limits.maxRangeCount) else {
            throw WireError.rangeTooLarge(count: header.count, limit: limits.maxRangeCount)
        }
        if header.type == .data {
            let expected = header.codec.codec.encodedByteCount(count: Int(header.count))
            guard expected == length else {
                throw WireError.payloadSizeMismatch(codec: header.codec.name, count: Int(header.count), expected: expected, actual: length)
            }
        }
        guard buffer.readableBytes >= FrameHeader.size + length else { return nil }
        let start = buffer.readerIndex
        let computed = buffer.withUnsafeReadableBytes { bytes -> UInt32 in
            let fields = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<(FrameHeader.size - 4)]))
            return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[FrameHeader.size..<(FrameHeader.size + length)]), continuing: fields)
        }
        let stated = buffer.getInteger(at: start + FrameHeader.size - 4, as: UInt32.self)!
        guard computed == stated else { throw WireError.checksumMismatch(expected: stated, actual: computed) }
        buffer.moveReaderIndex(forwardBy: FrameHeader.size)
        let payload = buffer.readSlice(length: length)!
        return Frame(header: header, payload: payload)
    }

    /// Like `decode`, but at the end of the stream leftover bytes are an error.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Frame? {
        if let frame = try decode(buffer: &buffer) { return frame }
        if seenEOF, buffer.readableBytes > 0 {
            let need = buffer.readableBytes >= FrameHeader.size
                ? FrameHeader.size + Int(buffer.getInteger(at: buffer.readerIndex + 44, as: UInt32.self)!)
                : FrameHeader.size
            throw WireError.truncated(have: buffer.readableBytes, need: need)
        }
        return nil
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try decode(buffer: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        guard let frame = try decodeLast(buffer: &buffer, seenEOF: seenEOF) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }
}

/// Writes frames to the byte stream.
public struct FrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = Frame

    public init() {}

    public func encode(data: Frame, out: inout ByteBuffer) throws {
        data.write(to: &out)
    }
}
