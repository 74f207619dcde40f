#if arch(x86_64) && os(Linux)
import _Builtin_intrinsics.intel
#endif

/// CRC-32C (Castagnoli), as used by iSCSI and ext4: detects corruption of frames in transit and
/// of files on disk.
public enum CRC32C {
    /// Checksum of `bytes`, continuing from `crc` (the checksum of what came before, or 0).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        ~update(~crc, bytes)
    }

    private static func update(_ state: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var i = 0
        var c = state
        #if arch(x86_64) && os(Linux)
        // SSE4.2's crc32 instruction, 8 bytes at a time (x86-64-v3 implies SSE4.2).
        var wide = UInt64(c)
        while i &+ 8 <= bytes.count {
            wide = _mm_crc32_u64(wide, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i &+= 8
        }
        c = UInt32(truncatingIfNeeded: wide)
        while i < bytes.count {
            c = _mm_crc32_u8(c, bytes[i])
            i &+= 1
        }
        #else
        while i < bytes.count {
            c = table[Int((c ^ UInt32(bytes[i])) & 0xFF)] ^ (c >> 8)
            i &+= 1
        }
        #endif
        return c
    }

    #if !(arch(x86_64) && os(Linux))
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }
    #endif
}
