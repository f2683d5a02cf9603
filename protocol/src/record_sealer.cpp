// Outgoing records, protocol.md §5.
#include "sdmp/protocol/record_sealer.hpp"

#include <libdeflate.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <new>

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

std::error_code RecordSealer::seal(ByteView payload, int level, Bytes& out) {
    Impl& s = *impl_;
    if (s.usage.exhausted())
        return errc::counter_exhausted;
    // protocol.md §5.1: a payload is never empty; §5.5: max_payload_size bounds it.
    if (payload.empty() || payload.size() > s.limits.max_payload_size) {
        return errc::limit_exceeded;
    }
    if (s.limits.max_record_size < detail::k_min_record_size)
        return errc::limit_exceeded;
    // The length prefix is a u32; keep the plaintext budget inside it whatever the limits say.
    const std::size_t max_plain =
        std::min<std::size_t>(s.limits.max_record_size, 0xffffffffu) - detail::k_record_tag_size;

    libdeflate_compressor* compressor = s.compressor(level);
    const std::size_t bound = libdeflate_deflate_compress_bound(compressor, payload.size());

    // One resize to the worst case, compress straight behind the prefix, then shrink (which
    // never reallocates): the payload is touched once by DEFLATE and once by the AEAD.
    const std::size_t base = out.size();
    out.resize(base + k_record_prefix_size + detail::padded_size(bound) +
               detail::k_record_tag_size);
    std::uint8_t* const frame = out.data() + base;
    std::uint8_t* const plain = frame + k_record_prefix_size;

    const std::size_t compressed =
        libdeflate_deflate_compress(compressor, payload.data(), payload.size(), plain, bound);
    const std::size_t padded = detail::padded_size(compressed);
    if (compressed == 0 || padded > max_plain) {
        // compressed == 0 cannot happen with the library's own bound; treat it as too large.
        out.resize(base);
        return errc::limit_exceeded;
    }
    // protocol.md §5.1: zero padding. The compressor may have used the space past its
    // output as scratch, so it is cleared explicitly.
    std::memset(plain + compressed, 0, padded - compressed);
    out.resize(base + k_record_prefix_size + padded + detail::k_record_tag_size);

    const auto record_size = static_cast<std::uint32_t>(padded + detail::k_record_tag_size);
    detail::store_u32_be(frame, record_size);
    crypto::Tag tag{};
    // protocol.md §5: AAD is the 4 length bytes; §5.2: counter nonce.
    s.sealer->seal(detail::record_nonce(s.usage.counter()), ByteView{frame, k_record_prefix_size},
                   MutableByteView{plain, padded}, tag);
    std::memcpy(plain + padded, tag.data(), tag.size());

    s.record_done(padded);
    return {};
}

std::uint64_t RecordSealer::key_generation() const noexcept {
    return impl_->usage.generation();
}

std::uint64_t RecordSealer::records_sealed() const noexcept {
    return impl_->usage.total_records();
}

}  // namespace sdmp::protocol
