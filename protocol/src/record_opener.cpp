// Incoming records, protocol.md §5.3.
#include "sdmp/protocol/record_opener.hpp"

#include <libdeflate.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

#include "record_common.hpp"
#include "sdmp/error.hpp"
#include "sdmp/protocol/key_schedule.hpp"

namespace sdmp::protocol {

namespace {

struct DecompressorDeleter {
    void operator()(libdeflate_decompressor* d) const noexcept { libdeflate_free_decompressor(d); }
};
using DecompressorPtr = std::unique_ptr<libdeflate_decompressor, DecompressorDeleter>;

// A DEFLATE symbol costs at least one bit and a match yields at most 258 bytes from two
// symbols (length + distance), so n input bytes inflate to at most 8 * 258 / 2 = 1032 * n
// bytes. The slack covers rounding; the bound only has to be safe, not tight.
constexpr std::size_t k_max_deflate_ratio = 1032;

std::size_t inflate_bound(std::size_t in_size) noexcept {
    constexpr std::size_t max = std::numeric_limits<std::size_t>::max();
    if (in_size > (max - k_max_deflate_ratio) / k_max_deflate_ratio)
        return max;
    return in_size * k_max_deflate_ratio + k_max_deflate_ratio;
}

constexpr std::size_t k_initial_buffer = 16 * 1024;
// next_view()'s output buffer is given back when it is this large and four times what a
// record needs.
constexpr std::size_t k_keep_view = 256 * 1024;
// Between records, input and output buffers above this go back: a session does not keep the
// ~16 MiB of one huge record, while one streaming 1 MiB messages keeps its buffers.
constexpr std::size_t k_keep_between_records = std::size_t{4} << 20;

// Sizes `payload` to `size` without letting the vector over-allocate: std::vector::resize
// may double the capacity, which would let a bomb allocate beyond max_payload_size.
void size_exactly(Bytes& payload, std::size_t size) {
    if (size > payload.capacity()) {
        payload.clear();  // the old contents are scratch: nothing to copy over
        payload.reserve(size);
    }
    payload.resize(size);
}

}  // namespace

struct RecordOpener::Impl {
    crypto::CryptoProvider* provider;
    crypto::AeadAlgorithm aead;
    crypto::SecretBytes key;
    std::unique_ptr<crypto::AeadOpener> opener;
    RecordLimits limits;
    detail::KeyUsage usage;
    DecompressorPtr decompressor;
    std::error_code fatal;

    // Input buffer: [start, end) holds received bytes not yet consumed. Not a std::vector so
    // that growing it never zero-fills space the socket overwrites anyway.
    std::unique_ptr<std::uint8_t[]> buffer;
    std::size_t capacity = 0;
    std::size_t start = 0;
    std::size_t end = 0;

    // Inflated/compressed size ratio of the last record, rounded up: the first output size
    // tried for the next one, so steady streams inflate in one pass without over-zeroing.
    std::size_t expansion_hint = 1;

    Impl(crypto::CryptoProvider& p, crypto::AeadAlgorithm a, const crypto::SecretBytes& k,
         RecordLimits l)
        : provider(&p),
          aead(a),
          key(k),
          opener(p.make_opener(a, k.view())),
          limits(l),
          decompressor(libdeflate_alloc_decompressor()) {
        if (!decompressor)
            throw std::bad_alloc();
    }

    std::size_t buffered() const noexcept { return end - start; }

    OpenResult fail(std::error_code ec) noexcept {
        fatal = ec;
        // Drop what is buffered: nothing after a fatal error may be interpreted.
        start = end = 0;
        return OpenResult::fatal(ec);
    }

    // protocol.md §5.3 step 1.
    bool length_valid(std::size_t n) const noexcept {
        return n >= detail::k_min_record_size &&
               (n - detail::k_record_tag_size) % k_padding_block == 0 &&
               n <= limits.max_record_size;
    }

    MutableByteView prepare(std::size_t min_size) {
        if (start == end) {
            start = end = 0;
            // Nothing buffered, and the last payload view is no longer in use (see next_view):
            // buffers much larger than needed go back.
            if (capacity > k_keep_between_records && min_size <= capacity / 4) {
                buffer.reset();
                capacity = 0;
            }
            if (out_capacity > k_keep_between_records) {
                out.reset();
                out_capacity = 0;
            }
        }
        if (capacity - end >= min_size)
            return {buffer.get() + end, capacity - end};
        const std::size_t live = end - start;
        if (min_size > std::numeric_limits<std::size_t>::max() / 2 - live)
            throw std::length_error("RecordOpener::prepare");
        // Move the live bytes to the front only when that costs no more than the bytes
        // consumed since the last move (amortised O(1) per byte); otherwise grow.
        if (start >= live && capacity - live >= min_size) {
            std::memmove(buffer.get(), buffer.get() + start, live);
        } else {
            const std::size_t new_capacity =
                std::max({capacity * 2, live + min_size, k_initial_buffer});
            auto grown = std::make_unique_for_overwrite<std::uint8_t[]>(new_capacity);
            if (live != 0)
                std::memcpy(grown.get(), buffer.get() + start, live);
            buffer = std::move(grown);
            capacity = new_capacity;
        }
        start = 0;
        end = live;
        return {buffer.get() + end, capacity - end};
    }

    // Output of next_view(): uninitialised (a vector would zero-fill what inflate overwrites).
    std::unique_ptr<std::uint8_t[]> out;
    std::size_t out_capacity = 0;

    // Space for `size` bytes of next_view() output. Never more than asked for, so a bomb
    // cannot make it allocate beyond max_payload_size; a buffer much larger than needed is
    // given back (a session that once received a large record does not keep it).
    std::uint8_t* view_space(std::size_t size) {
        if (size > out_capacity || (out_capacity > k_keep_view && size <= out_capacity / 4)) {
            out.reset();
            out_capacity = 0;  // stays consistent if the allocation throws
            out = std::make_unique_for_overwrite<std::uint8_t[]>(size);
            out_capacity = size;
        }
        return out.get();
    }

    // protocol.md §5.3 steps 3-4: inflate with a hard output limit, then require zeros.
    // `space(n)` returns room for n bytes (previous contents need not be kept).
    template <typename Space>
    std::error_code inflate(ByteView plain, Space&& space, std::size_t& out_size) {
        const std::size_t hard_limit = limits.max_payload_size;
        const std::size_t limit = std::min(hard_limit, inflate_bound(plain.size()));
        std::size_t avail =
            plain.size() > limit / expansion_hint ? limit : plain.size() * expansion_hint;
        std::size_t in_used = 0;
        out_size = 0;
        for (;;) {
            std::uint8_t* const dest = space(avail);
            const libdeflate_result r = libdeflate_deflate_decompress_ex(
                decompressor.get(), plain.data(), plain.size(), dest, avail, &in_used, &out_size);
            if (r == LIBDEFLATE_SUCCESS)
                break;
            if (r != LIBDEFLATE_INSUFFICIENT_SPACE)
                return errc::decompression_failed;
            if (avail == limit) {
                // Reaching max_payload_size is a bomb; reaching the ratio bound cannot happen
                // for valid DEFLATE.
                return limit == hard_limit ? errc::limit_exceeded : errc::decompression_failed;
            }
            avail = avail > limit / 4 ? limit : avail * 4;
        }
        if (in_used > plain.size())
            return errc::decompression_failed;
        const auto padding = plain.subspan(in_used);
        if (std::any_of(padding.begin(), padding.end(), [](std::uint8_t b) { return b != 0; })) {
            return errc::bad_padding;
        }
        // protocol.md §5.1: a payload is never empty.
        if (out_size == 0)
            return errc::malformed;
        expansion_hint = out_size / plain.size() + 1;
        return {};
    }

    std::error_code inflate(ByteView plain, Bytes& payload) {
        std::size_t out_size = 0;
        auto ec = inflate(
            plain,
            [&](std::size_t n) {
                size_exactly(payload, n);
                return payload.data();
            },
            out_size);
        if (ec) {
            payload.clear();
            return ec;
        }
        payload.resize(out_size);  // shrinking never reallocates
        return {};
    }

    // protocol.md §5.3 steps 1-2: authenticates and decrypts the next record in place and
    // consumes it; `plain` stays valid until the next prepare().
    OpenResult open_record(ByteView& plain_out) {
        if (fatal)
            return OpenResult::fatal(fatal);
        if (buffered() < k_record_prefix_size)
            return OpenResult::need_more_bytes();
        std::uint8_t* const frame = buffer.get() + start;
        const std::size_t n = detail::load_u32_be(frame);
        // Checked before the body is buffered, so a hostile prefix costs no memory.
        if (!length_valid(n))
            return fail(errc::limit_exceeded);
        if (buffered() - k_record_prefix_size < n)
            return OpenResult::need_more_bytes();
        if (usage.exhausted())
            return fail(errc::counter_exhausted);

        const std::size_t plain_size = n - detail::k_record_tag_size;
        std::uint8_t* const plain = frame + k_record_prefix_size;
        crypto::Tag tag{};
        std::memcpy(tag.data(), plain + plain_size, tag.size());
        if (auto ec = opener->open(detail::record_nonce(usage.counter()),
                                   ByteView{frame, k_record_prefix_size},
                                   MutableByteView{plain, plain_size}, tag)) {
            return fail(ec);
        }
        // The plaintext stays valid until the next prepare(), which only the caller triggers.
        start += k_record_prefix_size + n;
        plain_out = ByteView{plain, plain_size};
        return OpenResult::opened_record();
    }

    // protocol.md §5.4: mirror of the sealer; after a record was opened and inflated.
    void record_opened(std::size_t plain_size) {
        if (start == end)
            start = end = 0;
        if (usage.record_done(plain_size, limits)) {
            if (usage.last_generation()) {
                usage.mark_exhausted();
            } else {
                key = next_traffic_key(*provider, key);
                opener = provider->make_opener(aead, key.view());
                usage.key_updated();
            }
        }
    }

    OpenResult next(Bytes& payload) {
        ByteView plain;
        if (const OpenResult r = open_record(plain); !r.opened())
            return r;
        if (auto ec = inflate(plain, payload))
            return fail(ec);
        record_opened(plain.size());
        return OpenResult::opened_record();
    }

    OpenResult next_view(ByteView& payload) {
        payload = {};
        ByteView plain;
        if (const OpenResult r = open_record(plain); !r.opened())
            return r;
        std::size_t out_size = 0;
        if (auto ec = inflate(
                plain, [&](std::size_t n) { return view_space(n); }, out_size)) {
            return fail(ec);
        }
        record_opened(plain.size());
        payload = ByteView{out.get(), out_size};
        return OpenResult::opened_record();
    }

    std::size_t bytes_wanted() const noexcept {
        if (fatal)
            return 1;
        const std::size_t have = buffered();
        if (have < k_record_prefix_size)
            return k_record_prefix_size - have;
        const std::size_t n = detail::load_u32_be(buffer.get() + start);
        if (!length_valid(n))
            return 1;
        const std::size_t total = k_record_prefix_size + n;
        return have < total ? total - have : 1;
    }
};

RecordOpener::RecordOpener(crypto::CryptoProvider& provider, crypto::AeadAlgorithm aead,
                           const crypto::SecretBytes& key, RecordLimits limits)
    : impl_(std::make_unique<Impl>(provider, aead, key, limits)) {}

RecordOpener::RecordOpener(RecordOpener&&) noexcept = default;
RecordOpener& RecordOpener::operator=(RecordOpener&&) noexcept = default;
RecordOpener::~RecordOpener() = default;

MutableByteView RecordOpener::prepare(std::size_t min_size) {
    return impl_->prepare(min_size);
}

void RecordOpener::commit(std::size_t n) {
    Impl& o = *impl_;
    if (n > o.capacity - o.end) {
        throw std::invalid_argument("RecordOpener::commit: more than prepare() offered");
    }
    // After a fatal error nothing more is interpreted, so nothing more is kept.
    if (!o.fatal)
        o.end += n;
}

void RecordOpener::feed(ByteView bytes) {
    if (bytes.empty() || impl_->fatal)
        return;
    const MutableByteView space = impl_->prepare(bytes.size());
    std::memcpy(space.data(), bytes.data(), bytes.size());
    impl_->end += bytes.size();
}

OpenResult RecordOpener::next(Bytes& payload) {
    return impl_->next(payload);
}

OpenResult RecordOpener::next_view(ByteView& payload) {
    return impl_->next_view(payload);
}

std::size_t RecordOpener::bytes_wanted() const noexcept {
    return impl_->bytes_wanted();
}

std::size_t RecordOpener::buffered() const noexcept {
    return impl_->buffered();
}

std::uint64_t RecordOpener::key_generation() const noexcept {
    return impl_->usage.generation();
}

std::uint64_t RecordOpener::records_opened() const noexcept {
    return impl_->usage.total_records();
}

}  // namespace sdmp::protocol
