// A Botan node and an OpenSSL node on loopback, in both roles and with every suite: the client
// offers one suite, and the two exchange a large body sent stored (level 0, many DEFLATE
// blocks), a compressed body and enough small calls to cross several key updates
// (protocol.md §5.4). Counting wrappers around the two real providers show that each side's
// records, not only its handshake, went through the provider it was given.
#include <catch2/catch.hpp>

#if defined(SDMP_HAVE_OPENSSL)

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "framework_test_util.hpp"

using namespace fwtest;
using sdmp::ByteView;
using sdmp::MutableByteView;
namespace crypto = sdmp::crypto;

namespace {

constexpr std::size_t k_large = std::size_t{1} << 20;
constexpr int k_small_calls = 12;
// Small, so that the calls above cross several key updates; both peers must agree on it.
constexpr std::uint64_t k_records_per_key = 3;

class CountingSealer final : public crypto::AeadSealer {
  public:
    CountingSealer(std::unique_ptr<crypto::AeadSealer> inner, std::atomic<std::uint64_t>& count)
        : inner_(std::move(inner)), count_(count) {}
    void seal(const crypto::Nonce& nonce, ByteView aad, MutableByteView inout,
              crypto::Tag& tag_out) override {
        ++count_;
        inner_->seal(nonce, aad, inout, tag_out);
    }

  private:
    std::unique_ptr<crypto::AeadSealer> inner_;
    std::atomic<std::uint64_t>& count_;
};

class CountingOpener final : public crypto::AeadOpener {
  public:
    CountingOpener(std::unique_ptr<crypto::AeadOpener> inner, std::atomic<std::uint64_t>& count)
        : inner_(std::move(inner)), count_(count) {}
    std::error_code open(const crypto::Nonce& nonce, ByteView aad, MutableByteView inout,
                         const crypto::Tag& tag) override {
        ++count_;
        return inner_->open(nonce, aad, inout, tag);
    }

  private:
    std::unique_ptr<crypto::AeadOpener> inner_;
    std::atomic<std::uint64_t>& count_;
};

// Forwards everything to a real provider and counts signatures and AEAD operations (from any
// thread). Must outlive every sealer and opener it made.
class CountingProvider final : public crypto::CryptoProvider {
  public:
    explicit CountingProvider(crypto::CryptoProvider& inner) : inner_(inner) {}

    std::string_view name() const noexcept override { return inner_.name(); }
    void random(MutableByteView out) override { inner_.random(out); }
    crypto::DhKeyPair dh_generate() override { return inner_.dh_generate(); }
    std::error_code dh_from_private(ByteView private_key, crypto::DhKeyPair& out) override {
        return inner_.dh_from_private(private_key, out);
    }
    std::error_code dh_agree(const crypto::SecretBytes& private_key, ByteView peer_public,
                             crypto::SecretBytes& shared_out) override {
        return inner_.dh_agree(private_key, peer_public, shared_out);
    }
    crypto::SignKeyPair sign_generate() override { return inner_.sign_generate(); }
    std::error_code sign_from_seed(ByteView seed, crypto::SignKeyPair& out) override {
        return inner_.sign_from_seed(seed, out);
    }
    crypto::Signature sign(const crypto::SignKeyPair& key, ByteView message) override {
        ++signatures_;
        return inner_.sign(key, message);
    }
    bool verify(const crypto::SignPublic& public_key, ByteView message,
                const crypto::Signature& signature) override {
        return inner_.verify(public_key, message, signature);
    }
    crypto::Digest sha256(ByteView data) override { return inner_.sha256(data); }
    crypto::Digest sha256(std::span<const ByteView> parts) override { return inner_.sha256(parts); }
    void hkdf(ByteView salt, ByteView ikm, ByteView info, MutableByteView out) override {
        inner_.hkdf(salt, ikm, info, out);
    }
    std::unique_ptr<crypto::AeadSealer> make_sealer(crypto::AeadAlgorithm algorithm,
                                                    ByteView key) override {
        return std::make_unique<CountingSealer>(inner_.make_sealer(algorithm, key), seals_);
    }
    std::unique_ptr<crypto::AeadOpener> make_opener(crypto::AeadAlgorithm algorithm,
                                                    ByteView key) override {
        return std::make_unique<CountingOpener>(inner_.make_opener(algorithm, key), opens_);
    }
    bool equal(ByteView a, ByteView b) const noexcept override { return inner_.equal(a, b); }

    std::uint64_t signatures() const { return signatures_.load(); }
    std::uint64_t seals() const { return seals_.load(); }
    std::uint64_t opens() const { return opens_.load(); }

  private:
    crypto::CryptoProvider& inner_;
    std::atomic<std::uint64_t> signatures_{0};
    std::atomic<std::uint64_t> seals_{0};
    std::atomic<std::uint64_t> opens_{0};
};

crypto::CryptoProvider& provider_named(const char* name) {
    crypto::CryptoProvider* provider = crypto::find_provider(name);
    REQUIRE(provider != nullptr);
    return *provider;
}

sdmp::Bytes pseudo_random(std::size_t size, std::uint32_t seed) {
    std::mt19937 random(seed);
    sdmp::Bytes out(size);
    for (auto& b : out)
        b = static_cast<std::uint8_t>(random());
    return out;
}

// Compresses to a few percent at level 1.
sdmp::Bytes text(std::size_t size) {
    const std::string line = "the same line of a log, again and again, with a counter: ";
    std::string out;
    for (std::size_t i = 0; out.size() < size; ++i)
        out += line + std::to_string(i % 10) + "\n";
    out.resize(size);
    return sdmp::bytes_of(out);
}

sdmp::Router interop_router() {
    sdmp::Router router;
    router.add("echo", [](sdmp::Context&, sdmp::Bytes body) -> awaitable<sdmp::Reply> {
        co_return sdmp::Reply::ok(std::move(body));
    });
    // The suite the server's side of the session settled on.
    router.add("suite", [](sdmp::Context& ctx, sdmp::Bytes) -> awaitable<sdmp::Reply> {
        sdmp::Bytes id{static_cast<std::uint8_t>(ctx.peer().suite)};
        co_return sdmp::Reply::ok(std::move(id));
    });
    return router;
}

// One connection from a client on `client_name` to a server on `server_name`, offering only
// `suite`.
void exchange(const char* server_name, const char* client_name, crypto::SuiteId suite) {
    CountingProvider server_crypto(provider_named(server_name));
    CountingProvider client_crypto(provider_named(client_name));
    INFO("server " << server_crypto.name() << ", client " << client_crypto.name() << ", suite "
                   << static_cast<int>(suite));
    REQUIRE(server_crypto.name() != client_crypto.name());

    sdmp::protocol::RecordLimits limits;
    limits.records_per_key = k_records_per_key;
    auto options = server_options();
    options.handshake.provider = &server_crypto;
    options.session.record_limits = limits;
    options.session.compression = sdmp::CompressionPolicy::always;
    TestServer server(interop_router(), options);

    const sdmp::Bytes noise = pseudo_random(k_large, 7);
    const sdmp::Bytes prose = text(k_large);
    auto metrics = std::make_shared<sdmp::Metrics>();
    asio::io_context io;
    run(io, [&]() -> awaitable<void> {
        auto client = client_options();
        client.handshake.provider = &client_crypto;
        client.handshake.suites = {suite};
        client.session.record_limits = limits;
        client.session.compression = sdmp::CompressionPolicy::always;
        client.metrics = metrics;
        const sdmp::Session session = co_await connect_client(server, client);
        CHECK(session.peer().suite == suite);
        // (Never co_await inside a Catch assertion: GCC evaluates the expression again.)
        sdmp::Bytes empty;
        const sdmp::Reply seen = co_await session.call("suite", std::move(empty));
        REQUIRE(seen.is_ok());
        CHECK(seen.body == sdmp::Bytes{static_cast<std::uint8_t>(suite)});

        sdmp::CallOptions stored;
        stored.no_compress = true;  // level 0: 17 stored DEFLATE blocks in one record
        const sdmp::Reply large = co_await session.call("echo", noise, stored);
        REQUIRE(large.is_ok());
        CHECK(large.body == noise);
        const sdmp::Reply compressed = co_await session.call("echo", prose);
        REQUIRE(compressed.is_ok());
        CHECK(compressed.body == prose);
        for (int i = 0; i < k_small_calls; ++i) {
            const sdmp::Bytes body = sdmp::bytes_of("round " + std::to_string(i));
            const sdmp::Reply reply = co_await session.call("echo", body);
            CHECK(reply.body == body);
        }
        // Every write is counted once the session is closed.
        session.close();
        const std::error_code reason = co_await session.wait_closed();
        CHECK_FALSE(reason);
    }());
    drain(io);
    server.stop();
    CHECK(server.error().empty());

    // The noise went out as it was (stored), the prose compressed: what the client wrote is
    // the noise plus a small part of the prose; the server compressed both of its answers, and
    // random bytes barely grow at level 1.
    const sdmp::MetricsSnapshot client_side = metrics->snapshot();
    CHECK(client_side.bytes_out > k_large);
    CHECK(client_side.bytes_out < k_large + k_large / 10);
    CHECK(client_side.bytes_in < k_large + k_large / 10);
    const std::uint64_t calls = 3 + k_small_calls;
    CHECK(client_side.records_out >= calls);
    CHECK(client_side.records_in >= calls);

    // Each side's handshake signed with its own provider, and every record of its session was
    // sealed and opened by the same provider (one more of each for the connection messages).
    CHECK(client_crypto.signatures() == 1);
    CHECK(server_crypto.signatures() == 1);
    CHECK(client_crypto.seals() >= client_side.records_out + 1);
    CHECK(client_crypto.opens() >= client_side.records_in + 1);
    const sdmp::MetricsSnapshot server_side = server.server().metrics();
    CHECK(server_side.handshakes_completed == 1);
    CHECK(server_side.records_out >= calls);
    CHECK(server_crypto.seals() >= server_side.records_out + 1);
    CHECK(server_crypto.opens() >= server_side.records_in + 1);
}

}  // namespace

TEST_CASE("crypto interop: a Botan server and an OpenSSL client, every suite",
          "[framework][loopback][crypto][interop]") {
    REQUIRE(crypto::all_suite_ids().size() >= 2);
    for (const crypto::SuiteId suite : crypto::all_suite_ids())
        exchange("botan", "openssl", suite);
}

TEST_CASE("crypto interop: an OpenSSL server and a Botan client, every suite",
          "[framework][loopback][crypto][interop]") {
    REQUIRE(crypto::all_suite_ids().size() >= 2);
    for (const crypto::SuiteId suite : crypto::all_suite_ids())
        exchange("openssl", "botan", suite);
}

#endif  // SDMP_HAVE_OPENSSL
