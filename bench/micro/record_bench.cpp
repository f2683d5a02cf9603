// Record layer throughput (protocol.md §5) next to the bare AEAD it is built on.
//
// For each payload size and DEFLATE level it measures one seal + one open per message, in
// MB/s of payload, and compares it with the provider's AEAD sealing and opening a buffer of
// the same padded size in place. The ratio record/raw is the cost of framing, DEFLATE,
// padding checks and buffering. Time is the thread's CPU time, and raw and record runs are
// interleaved, so that other processes on a shared machine disturb the ratio as little as
// possible. Usage:
//   sdmp-bench-record_bench [seconds_per_run=0.3] [runs=5] [aes|chacha]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <time.h>

#include "sdmp/crypto/crypto_provider.hpp"
#include "sdmp/protocol/record_opener.hpp"
#include "sdmp/protocol/record_sealer.hpp"

namespace {

using sdmp::Bytes;
using sdmp::ByteView;
using sdmp::crypto::AeadAlgorithm;

// CPU time of this thread: a run preempted by another process is not charged for the wait.
double cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Options {
    double seconds = 0.3;
    int runs = 5;
    AeadAlgorithm aead = AeadAlgorithm::aes_256_gcm;
};

Bytes random_payload(std::size_t n, std::mt19937_64& rng) {
    Bytes b(n);
    for (auto& x : b)
        x = static_cast<std::uint8_t>(rng());
    return b;
}

// JSON-like records: repetitive keys, varying numbers and names (compresses about 3-5x).
Bytes text_payload(std::size_t n, std::mt19937_64& rng) {
    static const char* const names[] = {"alice", "bob", "carol", "dave", "erin", "frank"};
    static const char* const cities[] = {"Lisbon", "Oslo", "Quito", "Nairobi", "Osaka"};
    std::string s;
    while (s.size() < n) {
        s += "{\"id\":" + std::to_string(rng() % 1000000) + ",\"name\":\"" + names[rng() % 6] +
             std::to_string(rng() % 10000) + "\",\"city\":\"" + cities[rng() % 5] +
             "\",\"score\":" + std::to_string(rng() % 1000) + "." + std::to_string(rng() % 100) +
             ",\"active\":" + (rng() % 2 ? "true" : "false") + "}\n";
    }
    s.resize(n);
    return Bytes(s.begin(), s.end());
}

std::size_t padded(std::size_t n) {
    return (n + 255) / 256 * 256;
}

// Runs `op` (which processes `bytes_per_op` payload bytes) for about `seconds`; returns MB/s.
template <class Op>
double throughput(double seconds, std::size_t bytes_per_op, Op&& op) {
    std::size_t ops = 0;
    const double start = cpu_seconds();
    double now = start;
    // Check the clock every few operations only, so tiny messages are not clock-bound.
    const std::size_t batch = std::max<std::size_t>(1, (256 * 1024) / bytes_per_op);
    do {
        for (std::size_t i = 0; i < batch; ++i)
            op();
        ops += batch;
        now = cpu_seconds();
    } while (now - start < seconds);
    return static_cast<double>(ops * bytes_per_op) / (now - start) / 1e6;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

sdmp::crypto::SecretBytes bench_key() {
    sdmp::crypto::SecretBytes key(32);
    for (std::size_t i = 0; i < key.size(); ++i)
        key.data()[i] = static_cast<std::uint8_t>(i);
    return key;
}

// Seal + open of a buffer of `size` bytes in place with the bare provider AEAD.
class RawAead {
  public:
    RawAead(AeadAlgorithm aead, std::size_t size)
        : sealer_(sdmp::crypto::default_provider().make_sealer(aead, bench_key().view())),
          opener_(sdmp::crypto::default_provider().make_opener(aead, bench_key().view())),
          buffer_(size, 0x42) {}

    void operator()() {
        sdmp::crypto::Nonce nonce{};
        ++counter_;
        for (std::size_t i = 0; i < 8; ++i) {
            nonce[11 - i] = static_cast<std::uint8_t>(counter_ >> (8 * i));
        }
        sealer_->seal(nonce, aad_, buffer_, tag_);
        if (opener_->open(nonce, aad_, buffer_, tag_))
            std::abort();
    }

  private:
    std::unique_ptr<sdmp::crypto::AeadSealer> sealer_;
    std::unique_ptr<sdmp::crypto::AeadOpener> opener_;
    Bytes buffer_;
    std::uint8_t aad_[4] = {0, 0, 0, 0};
    sdmp::crypto::Tag tag_{};
    std::uint64_t counter_ = 0;
};

// One seal and one open per message through the public record API, the opener fed the way a
// driver would after a socket read (prepare + copy + commit).
class RecordRoundTrip {
  public:
    RecordRoundTrip(AeadAlgorithm aead, const Bytes& payload, int level)
        : sealer_(sdmp::crypto::default_provider(), aead, bench_key()),
          opener_(sdmp::crypto::default_provider(), aead, bench_key()),
          payload_(payload),
          level_(level) {
        (*this)();
        if (received_ != payload_) {
            std::fprintf(stderr, "round trip mismatch\n");
            std::abort();
        }
    }

    void operator()() {
        frame_.clear();
        if (sealer_.seal(payload_, level_, frame_))
            std::abort();
        auto space = opener_.prepare(frame_.size());
        std::copy(frame_.begin(), frame_.end(), space.begin());
        opener_.commit(frame_.size());
        if (!opener_.next(received_).opened())
            std::abort();
    }

    std::size_t frame_size() const { return frame_.size(); }

  private:
    sdmp::protocol::RecordSealer sealer_;
    sdmp::protocol::RecordOpener opener_;
    const Bytes& payload_;
    int level_;
    Bytes frame_;
    Bytes received_;
};

std::string size_name(std::size_t n) {
    if (n >= (1u << 20))
        return std::to_string(n >> 20) + " MiB";
    if (n >= 1024)
        return std::to_string(n >> 10) + " KiB";
    return std::to_string(n) + " B";
}

}  // namespace

int main(int argc, char** argv) {
    Options options;
    if (argc > 1)
        options.seconds = std::atof(argv[1]);
    if (argc > 2)
        options.runs = std::max(1, std::atoi(argv[2]));
    if (argc > 3 && std::string_view(argv[3]) == "chacha") {
        options.aead = AeadAlgorithm::chacha20_poly1305;
    }

    const std::size_t sizes[] = {64, 1024, 64 * 1024, 1024 * 1024};
    const int levels[] = {0, 1};
    std::printf("sdmp record layer vs raw AEAD (%s), seal+open, median of %d runs x %.2f s\n",
                options.aead == AeadAlgorithm::aes_256_gcm ? "AES-256-GCM" : "ChaCha20-Poly1305",
                options.runs, options.seconds);
    std::printf(
        "raw = provider AEAD seal+open in place on the padded size of the payload;\n"
        "CPU time; ratio = median of per-run record/raw pairs\n\n");
    std::printf("%-8s %-8s %5s %12s %12s %7s %10s\n", "payload", "size", "level", "record MB/s",
                "raw MB/s", "ratio", "wire/payl");

    std::mt19937_64 rng(1);
    for (const char* kind : {"random", "text"}) {
        for (std::size_t size : sizes) {
            const Bytes payload = std::string_view(kind) == "random" ? random_payload(size, rng)
                                                                     : text_payload(size, rng);
            // The level-0 plaintext: stored-block headers (5 bytes per 64 KiB) plus padding.
            const std::size_t stored = size + 5 * ((size + 65534) / 65535);
            RawAead raw(options.aead, padded(stored));
            for (int level : levels) {
                RecordRoundTrip record(options.aead, payload, level);
                std::vector<double> raw_mbs;
                std::vector<double> record_mbs;
                std::vector<double> ratios;
                for (int run = 0; run < options.runs; ++run) {
                    raw_mbs.push_back(throughput(options.seconds, size, raw));
                    record_mbs.push_back(throughput(options.seconds, size, record));
                    ratios.push_back(record_mbs.back() / raw_mbs.back());
                }
                std::printf("%-8s %-8s %5d %12.1f %12.1f %7.2f %10.3f\n", kind,
                            size_name(size).c_str(), level, median(record_mbs), median(raw_mbs),
                            median(ratios),
                            static_cast<double>(record.frame_size()) / static_cast<double>(size));
                std::fflush(stdout);
            }
        }
    }
    return 0;
}
