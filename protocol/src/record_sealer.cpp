// Outgoing records, protocol.md §5.
#include "sdmp/protocol/record_sealer.hpp"

#include <libdeflate.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <new>
#include <stdexcept>

#include "record_common.hpp"
#include "sdmp/error.hpp"
#include "sdmp/protocol/key_schedule.hpp"

namespace sdmp::protocol {

namespace {

constexpr int k_max_level = 12;

struct CompressorDeleter {
    void operator()(libdeflate_compressor* c) const noexcept { libdeflate_free_compressor(c); }
};
using CompressorPtr = std::unique_ptr<libdeflate_compressor, CompressorDeleter>;

// RFC 1951 §3.2.4 stored blocks of the concatenated `parts` (`total` bytes, > 0) at `out`:
// blocks of 65535 bytes, the last one final, exactly like libdeflate's level 0 (so a gathered
// record is byte-identical to one sealed from contiguous bytes). Returns the bytes written.
std::size_t write_stored(std::span<const ByteView> parts, std::size_t total, std::uint8_t* out) {
    constexpr std::size_t k_max_stored = 0xffff;
    std::uint8_t* o = out;
    std::size_t part = 0;
    std::size_t offset = 0;
    for (std::size_t left = total; left != 0;) {
        const std::size_t len = std::min(left, k_max_stored);
        const auto nlen = static_cast<std::uint16_t>(~len);
        *o++ = len == left ? 1 : 0;  // BFINAL, BTYPE 00; byte-aligned from here
        *o++ = static_cast<std::uint8_t>(len);
        *o++ = static_cast<std::uint8_t>(len >> 8);
        *o++ = static_cast<std::uint8_t>(nlen);
        *o++ = static_cast<std::uint8_t>(nlen >> 8);
        for (std::size_t need = len; need != 0;) {
            const ByteView p = parts[part];
            const std::size_t n = std::min(need, p.size() - offset);
            if (n != 0)
                std::memcpy(o, p.data() + offset, n);
            o += n;
            offset += n;
            need -= n;
            if (offset == p.size()) {
                ++part;
                offset = 0;
            }
        }
        left -= len;
    }
    return static_cast<std::size_t>(o - out);
}

// The concatenation buffer for compressing gathered parts is not kept when it grew past this.
constexpr std::size_t k_keep_gathered = std::size_t{256} << 10;

}  // namespace

struct RecordSealer::Impl {
    crypto::CryptoProvider* provider;
    crypto::AeadAlgorithm aead;
    crypto::SecretBytes key;
    std::unique_ptr<crypto::AeadSealer> sealer;
    RecordLimits limits;
    detail::KeyUsage usage;
    // One compressor per level actually used, created on first use: a level-12 compressor
    // holds a few hundred KiB of tables, so a connection that only sends level 0/1 never pays.
    std::array<CompressorPtr, k_max_level + 1> compressors;
    Bytes scratch;   // output of compressed_size(), grown on first use
    Bytes gathered;  // parts concatenated for DEFLATE at a level above 0

    Impl(crypto::CryptoProvider& p, crypto::AeadAlgorithm a, const crypto::SecretBytes& k,
         RecordLimits l)
        : provider(&p), aead(a), key(k), sealer(p.make_sealer(a, k.view())), limits(l) {}

    libdeflate_compressor* compressor(int level) {
        const auto index = static_cast<std::size_t>(std::clamp(level, 0, k_max_level));
        auto& slot = compressors[index];
        if (!slot) {
            slot.reset(libdeflate_alloc_compressor(static_cast<int>(index)));
            if (!slot)
                throw std::bad_alloc();
        }
        return slot.get();
    }

    // protocol.md §5.4: ratchet after the record that reaches a limit.
    void record_done(std::size_t padded) {
        if (!usage.record_done(padded, limits))
            return;
        if (usage.last_generation()) {
            usage.mark_exhausted();
            return;
        }
        key = next_traffic_key(*provider, key);
        sealer = provider->make_sealer(aead, key.view());
        usage.key_updated();
    }
};

RecordSealer::RecordSealer(crypto::CryptoProvider& provider, crypto::AeadAlgorithm aead,
                           const crypto::SecretBytes& key, RecordLimits limits)
    : impl_(std::make_unique<Impl>(provider, aead, key, limits)) {}

RecordSealer::RecordSealer(RecordSealer&&) noexcept = default;
RecordSealer& RecordSealer::operator=(RecordSealer&&) noexcept = default;
RecordSealer::~RecordSealer() = default;

std::size_t RecordSealer::sealed_size_bound(std::size_t payload_size, int level) {
    libdeflate_compressor* compressor = impl_->compressor(level);
    const std::size_t bound = libdeflate_deflate_compress_bound(compressor, payload_size);
    return k_record_prefix_size + detail::padded_size(bound) + detail::k_record_tag_size;
}

std::error_code RecordSealer::seal(ByteView payload, int level, Bytes& out) {
    if (payload.size() > impl_->limits.max_payload_size)
        return errc::limit_exceeded;
    const std::size_t base = out.size();
    out.resize(base + sealed_size_bound(payload.size(), level));
    std::size_t written = 0;
    const std::error_code ec =
        seal_into(payload, level, 0, MutableByteView(out).subspan(base), written);
    out.resize(base + written);  // shrinking never reallocates
    return ec;
}

std::error_code RecordSealer::seal_into(ByteView payload, int level, std::size_t fallback_above,
                                        MutableByteView out, std::size_t& written,
                                        int* level_used) {
    const ByteView parts[1] = {payload};
    return seal_into(std::span<const ByteView>(parts), level, fallback_above, out, written,
                     level_used);
}

std::error_code RecordSealer::seal_into(std::span<const ByteView> parts, int level,
                                        std::size_t fallback_above, MutableByteView out,
                                        std::size_t& written, int* level_used) {
    Impl& s = *impl_;
    written = 0;
    if (s.usage.exhausted())
        return errc::counter_exhausted;
    std::size_t total = 0;
    for (const ByteView part : parts) {
        if (part.size() > s.limits.max_payload_size - total)
            return errc::limit_exceeded;
        total += part.size();
    }
    // protocol.md §5.1: a payload is never empty; §5.5: max_payload_size bounds it.
    if (total == 0)
        return errc::limit_exceeded;
    if (s.limits.max_record_size < detail::k_min_record_size)
        return errc::limit_exceeded;
    // The length prefix is a u32; keep the plaintext budget inside it whatever the limits say.
    const std::size_t max_plain =
        std::min<std::size_t>(s.limits.max_record_size, 0xffffffffu) - detail::k_record_tag_size;

    libdeflate_compressor* compressor = s.compressor(level);
    const std::size_t bound = libdeflate_deflate_compress_bound(compressor, total);
    if (out.size() < k_record_prefix_size + detail::padded_size(bound) + detail::k_record_tag_size)
        throw std::invalid_argument("RecordSealer::seal_into: output smaller than the bound");

    // Compress straight behind the prefix, encrypt in place: the payload is touched once by
    // DEFLATE and once by the AEAD.
    std::uint8_t* const frame = out.data();
    std::uint8_t* const plain = frame + k_record_prefix_size;

    std::size_t compressed = 0;
    int used = level;
    if (parts.size() > 1 && level == 0) {
        // Stored blocks need no contiguous input: copied once, part by part.
        compressed = write_stored(parts, total, plain);
    } else {
        ByteView payload = parts.empty() ? ByteView{} : parts[0];
        if (parts.size() > 1) {
            s.gathered.clear();
            s.gathered.reserve(total);
            for (const ByteView part : parts)
                s.gathered.insert(s.gathered.end(), part.begin(), part.end());
            payload = s.gathered;
        }
        compressed =
            libdeflate_deflate_compress(compressor, payload.data(), payload.size(), plain, bound);
        if (fallback_above != 0 && level != 0 && (compressed == 0 || compressed > fallback_above)) {
            // Not worth it: stored blocks instead (protocol.md §5.1 lets the sender choose), in
            // the same space (never larger than the level-n bound). No nonce is spent until the
            // AEAD below.
            compressed = write_stored(std::span<const ByteView>(&payload, 1), total, plain);
            used = 0;
        }
        if (s.gathered.capacity() > k_keep_gathered)
            Bytes().swap(s.gathered);
    }
    const std::size_t padded = detail::padded_size(compressed);
    if (compressed == 0 || padded > max_plain) {
        // compressed == 0 cannot happen with the library's own bound; treat it as too large.
        return errc::limit_exceeded;
    }
    // protocol.md §5.1: zero padding. The compressor may have used the space past its
    // output as scratch, so it is cleared explicitly.
    std::memset(plain + compressed, 0, padded - compressed);

    const auto record_size = static_cast<std::uint32_t>(padded + detail::k_record_tag_size);
    detail::store_u32_be(frame, record_size);
    crypto::Tag tag{};
    // protocol.md §5: AAD is the 4 length bytes; §5.2: counter nonce.
    s.sealer->seal(detail::record_nonce(s.usage.counter()), ByteView{frame, k_record_prefix_size},
                   MutableByteView{plain, padded}, tag);
    std::memcpy(plain + padded, tag.data(), tag.size());

    s.record_done(padded);
    written = k_record_prefix_size + padded + detail::k_record_tag_size;
    if (level_used != nullptr)
        *level_used = used;
    return {};
}

std::size_t RecordSealer::compressed_size(ByteView sample, int level, std::size_t limit) {
    Impl& s = *impl_;
    if (sample.empty() || limit == 0)
        return 0;
    libdeflate_compressor* compressor = s.compressor(level);
    const std::size_t avail = std::min(limit, sample.size());
    if (s.scratch.size() < avail)
        s.scratch.resize(avail);
    // libdeflate returns 0 when the output does not fit in `avail` bytes.
    return libdeflate_deflate_compress(compressor, sample.data(), sample.size(), s.scratch.data(),
                                       avail);
}

std::uint64_t RecordSealer::key_generation() const noexcept {
    return impl_->usage.generation();
}

std::uint64_t RecordSealer::records_sealed() const noexcept {
    return impl_->usage.total_records();
}

}  // namespace sdmp::protocol
