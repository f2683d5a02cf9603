// Length-prefixed, pipelined request/response framing shared by the `tcp` and `tls` baselines.
//
// Wire format, both directions: u32 body length | u64 request id | body (big-endian integers).
// Responses carry the id of their request, so any number of requests may be in flight on one
// connection and are matched by id on return.
//
// Each connection end runs two coroutines, as sdmp's framework does: a reader that parses frames
// out of a 64 KiB buffer (one read syscall / SSL_read serves many small frames) and a writer that
// flushes a coalescing output queue (many small frames leave in one write / one TLS record).
// Bodies larger than k_gather_threshold are not copied on send: the writer gathers them by
// reference, which is safe because the caller stays suspended until its response arrives, and a
// failure completes waiting callers only after both coroutines have ended. Received bodies larger
// than the read buffer are read straight into their destination.
#pragma once

#include "system.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace sdmp::bench::framed {

using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

inline constexpr std::size_t k_header_size = 12;
// Limit on the length field read from the wire: nothing in the benchmark sends more than 1 MiB.
inline constexpr std::uint32_t k_max_body = 16u << 20;
inline constexpr std::size_t k_read_buffer_size = 64 * 1024;
// Bodies up to this size are copied into the coalescing output buffer; larger ones are gathered.
inline constexpr std::size_t k_gather_threshold = 16 * 1024;
// A server drops a connection whose handshake has not completed by then.
inline constexpr std::chrono::seconds k_handshake_deadline{10};

inline void store_header(std::uint8_t* out, std::uint32_t length, std::uint64_t id) {
    for (int i = 0; i < 4; ++i) {
        out[i] = static_cast<std::uint8_t>(length >> (24 - 8 * i));
    }
    for (int i = 0; i < 8; ++i) {
        out[4 + i] = static_cast<std::uint8_t>(id >> (56 - 8 * i));
    }
}

inline std::uint32_t load_u32(const std::uint8_t* in) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        v = (v << 8) | in[i];
    }
    return v;
}

inline std::uint64_t load_u64(const std::uint8_t* in) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
        v = (v << 8) | in[i];
    }
    return v;
}

// A one-shot, level-triggered event for coroutines on one executor: wait() completes once set()
// has been called (immediately if it already was).
class Event {
  public:
    explicit Event(asio::any_io_executor ex) : ex_(std::move(ex)) {}

    void set() {
        if (set_) {
            return;
        }
        set_ = true;
        auto waiters = std::move(waiters_);
        waiters_.clear();
        for (auto& w : waiters) {
            asio::post(ex_, [h = std::move(w)]() mutable { std::move(h)(); });
        }
    }

    [[nodiscard]] bool is_set() const { return set_; }

    asio::awaitable<void> wait() {
        if (set_) {
            co_return;
        }
        co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
            [this](asio::any_completion_handler<void()> handler) {
                waiters_.push_back(std::move(handler));
            },
            asio::use_awaitable);
    }

  private:
    asio::any_io_executor ex_;
    bool set_ = false;
    std::vector<asio::any_completion_handler<void()>> waiters_;
};

// Frames queued for the writer: headers and small bodies are copied into `bytes`; each large body
// is referenced and spliced in after bytes[0, at).
class OutQueue {
  public:
    [[nodiscard]] bool empty() const { return bytes_.empty() && refs_.empty(); }

    void clear() {
        bytes_.clear();
        refs_.clear();
    }

    void append(std::uint64_t id, std::span<const std::uint8_t> body, bool may_reference) {
        const std::size_t at = bytes_.size();
        bytes_.resize(at + k_header_size);
        store_header(bytes_.data() + at, static_cast<std::uint32_t>(body.size()), id);
        if (may_reference && body.size() > k_gather_threshold) {
            refs_.push_back(Ref{bytes_.size(), body});
        } else {
            bytes_.insert(bytes_.end(), body.begin(), body.end());
        }
    }

    void to_buffers(std::vector<asio::const_buffer>& out) const {
        out.clear();
        std::size_t pos = 0;
        for (const Ref& r : refs_) {
            if (r.at > pos) {
                out.emplace_back(bytes_.data() + pos, r.at - pos);
            }
            out.emplace_back(r.data.data(), r.data.size());
            pos = r.at;
        }
        if (bytes_.size() > pos) {
            out.emplace_back(bytes_.data() + pos, bytes_.size() - pos);
        }
    }

  private:
    struct Ref {
        std::size_t at;
        std::span<const std::uint8_t> data;
    };
    Bytes bytes_;
    std::vector<Ref> refs_;
};

// Receives the frames that FrameIo::read_loop parses. Returning an error closes the connection.
class FrameSink {
  public:
    // A complete frame whose body sits in the read buffer (valid only during the call).
    virtual error_code on_frame(std::uint64_t id, std::span<const std::uint8_t> body) = 0;
    // A frame whose body is larger than the read buffer: where to put its `length` bytes. An
    // empty span rejects the frame.
    virtual std::span<std::uint8_t> large_body_buffer(std::uint64_t id, std::size_t length) = 0;
    // The body requested by large_body_buffer has been filled.
    virtual error_code on_large_frame(std::uint64_t id, std::span<const std::uint8_t> body) = 0;

  protected:
    ~FrameSink() = default;
};

// One connection end: the stream, the reader and writer loops and the output queue.
template <typename Stream>
class FrameIo {
  public:
    explicit FrameIo(Stream stream)
        : stream_(std::move(stream)),
          kick_(stream_.get_executor(), 1),
          read_buffer_(std::make_unique_for_overwrite<std::uint8_t[]>(k_read_buffer_size)),
          frames_per_flush_(baseline_frames_per_flush.load(std::memory_order_relaxed)) {}

    Stream& stream() { return stream_; }
    [[nodiscard]] asio::any_io_executor executor() { return stream_.get_executor(); }
    [[nodiscard]] bool closing() const { return closing_; }
    // The first error that ended the connection, if any.
    [[nodiscard]] error_code error() const { return error_; }

    void enqueue(std::uint64_t id, std::span<const std::uint8_t> body, bool may_reference) {
        out_.append(id, body, may_reference);
        if (writer_waiting_) {
            writer_waiting_ = false;
            kick_.try_send(error_code{});
        }
    }

    // Closes the socket (aborting both loops' pending operations) and wakes the writer.
    void shutdown() {
        if (closing_) {
            return;
        }
        closing_ = true;
        error_code ignored;
        stream_.lowest_layer().close(ignored);
        kick_.close();
    }

    void fail(error_code ec) {
        if (!error_) {
            error_ = ec;
        }
        shutdown();
    }

    asio::awaitable<void> write_loop() {
        using asio::as_tuple;
        using asio::use_awaitable;
        while (!closing_) {
            if (out_.empty()) {
                writer_waiting_ = true;
                auto [ec] = co_await kick_.async_receive(as_tuple(use_awaitable));
                writer_waiting_ = false;
                if (ec) {
                    break;
                }
                continue;
            }
            std::swap(out_, flushing_);
            flushing_.to_buffers(gather_);
            auto [ec, n] = co_await asio::async_write(stream_, gather_, as_tuple(use_awaitable));
            flushing_.clear();
            if (ec) {
                fail(ec);
                break;
            }
        }
        shutdown();
    }

    asio::awaitable<void> read_loop(FrameSink& sink) {
        using asio::as_tuple;
        using asio::use_awaitable;
        std::uint8_t* const buf = read_buffer_.get();
        std::size_t begin = 0;
        std::size_t end = 0;
        while (!closing_) {
            std::size_t need = k_header_size;  // bytes the frame at `begin` needs in the buffer
            while (end - begin >= k_header_size) {
                const std::uint32_t length = load_u32(buf + begin);
                const std::uint64_t id = load_u64(buf + begin + 4);
                if (length > k_max_body) {
                    fail(asio::error::message_size);
                    co_return;
                }
                const std::size_t have = end - begin - k_header_size;
                if (have >= length) {
                    if (auto ec = sink.on_frame(id, {buf + begin + k_header_size, length}); ec) {
                        fail(ec);
                        co_return;
                    }
                    begin += k_header_size + length;
                    if (++frames_since_flush_ == frames_per_flush_ &&
                        end - begin >= k_header_size) {
                        // More frames wait: one turn of the executor lets the writer (woken
                        // through the channel) send what these produced first.
                        frames_since_flush_ = 0;
                        co_await asio::post(stream_.get_executor(), use_awaitable);
                        if (closing_) {
                            co_return;
                        }
                    }
                    continue;
                }
                need = k_header_size + length;
                if (need <= k_read_buffer_size) {
                    break;  // fits once more bytes arrive
                }
                // Larger than the buffer: read the rest straight into its destination.
                const std::span<std::uint8_t> dest = sink.large_body_buffer(id, length);
                if (dest.size() != length) {
                    fail(asio::error::invalid_argument);
                    co_return;
                }
                std::memcpy(dest.data(), buf + begin + k_header_size, have);
                begin = end = 0;
                need = k_header_size;
                auto [ec, n] = co_await asio::async_read(
                    stream_, asio::buffer(dest.data() + have, length - have),
                    as_tuple(use_awaitable));
                if (ec) {
                    fail(ec);
                    co_return;
                }
                if (auto sink_ec = sink.on_large_frame(id, dest); sink_ec) {
                    fail(sink_ec);
                    co_return;
                }
            }
            if (begin == end) {
                begin = end = 0;
            } else if (begin + need > k_read_buffer_size) {
                std::memmove(buf, buf + begin, end - begin);
                end -= begin;
                begin = 0;
            }
            frames_since_flush_ = 0;
            auto [ec, n] = co_await stream_.async_read_some(
                asio::buffer(buf + end, k_read_buffer_size - end), as_tuple(use_awaitable));
            if (ec) {
                fail(ec);
                co_return;
            }
            end += n;
        }
    }

  private:
    Stream stream_;
    asio::experimental::channel<void(error_code)> kick_;
    bool writer_waiting_ = false;
    bool closing_ = false;
    error_code error_;
    OutQueue out_;
    OutQueue flushing_;
    std::vector<asio::const_buffer> gather_;
    std::unique_ptr<std::uint8_t[]> read_buffer_;
    std::size_t frames_per_flush_;  // baseline_frames_per_flush at construction; 0 = never
    std::size_t frames_since_flush_ = 0;
};

// --- client -------------------------------------------------------------------------------------

template <typename Stream>
class ClientSession final : public std::enable_shared_from_this<ClientSession<Stream>>,
                            private FrameSink {
  public:
    explicit ClientSession(Stream stream) : io_(std::move(stream)), closed_(io_.executor()) {}

    void start() {
        using namespace asio::experimental::awaitable_operators;
        auto self = this->shared_from_this();
        asio::co_spawn(
            io_.executor(),
            [self]() -> asio::awaitable<void> {
                co_await (self->io_.read_loop(*self) && self->io_.write_loop());
            },
            [self](std::exception_ptr failure) { self->finish(failure); });
    }

    asio::awaitable<void> request(std::span<const std::uint8_t> body, Bytes& response) {
        co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(error_code)>(
            [this, body, &response](asio::any_completion_handler<void(error_code)> handler) {
                if (io_.closing() || closed_.is_set()) {
                    complete(std::move(handler), end_error());
                    return;
                }
                if (body.size() > k_max_body) {
                    complete(std::move(handler), asio::error::message_size);
                    return;
                }
                const std::uint64_t id = next_id_++;
                pending_.emplace(id, Pending{&response, std::move(handler)});
                io_.enqueue(id, body, /*may_reference=*/true);
            },
            asio::use_awaitable);
    }

    asio::awaitable<void> wait_closed() { co_await closed_.wait(); }

    asio::awaitable<void> close() {
        io_.shutdown();
        co_await closed_.wait();
    }

    void shutdown() { io_.shutdown(); }

  private:
    struct Pending {
        Bytes* response;
        asio::any_completion_handler<void(error_code)> handler;
    };

    error_code on_frame(std::uint64_t id, std::span<const std::uint8_t> body) override {
        const auto it = pending_.find(id);
        if (it == pending_.end()) {
            return asio::error::invalid_argument;  // a response nobody asked for
        }
        it->second.response->assign(body.begin(), body.end());
        complete(std::move(it->second.handler), {});
        pending_.erase(it);
        return {};
    }

    std::span<std::uint8_t> large_body_buffer(std::uint64_t id, std::size_t length) override {
        const auto it = pending_.find(id);
        if (it == pending_.end()) {
            return {};
        }
        it->second.response->resize(length);
        return {it->second.response->data(), length};
    }

    error_code on_large_frame(std::uint64_t id, std::span<const std::uint8_t>) override {
        const auto it = pending_.find(id);
        if (it == pending_.end()) {
            return asio::error::invalid_argument;
        }
        complete(std::move(it->second.handler), {});
        pending_.erase(it);
        return {};
    }

    void complete(asio::any_completion_handler<void(error_code)> handler, error_code ec) {
        asio::post(io_.executor(), [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
    }

    [[nodiscard]] error_code end_error() const {
        return io_.error() ? io_.error() : error_code(asio::error::operation_aborted);
    }

    // Both loops have ended, so no write references a caller's body any more: fail the callers.
    void finish(std::exception_ptr failure) {
        if (failure && !io_.error()) {
            io_.fail(asio::error::fault);
        }
        auto pending = std::move(pending_);
        pending_.clear();
        for (auto& [id, call] : pending) {
            complete(std::move(call.handler), end_error());
        }
        closed_.set();
    }

    FrameIo<Stream> io_;
    Event closed_;
    std::uint64_t next_id_ = 1;
    std::unordered_map<std::uint64_t, Pending> pending_;
};

template <typename Stream>
class FramedConnection final : public Connection {
  public:
    explicit FramedConnection(Stream stream)
        : session_(std::make_shared<ClientSession<Stream>>(std::move(stream))) {
        session_->start();
    }
    ~FramedConnection() override { session_->shutdown(); }
    FramedConnection(const FramedConnection&) = delete;
    FramedConnection& operator=(const FramedConnection&) = delete;

    asio::awaitable<void> request(std::span<const std::uint8_t> body, Bytes& response) override {
        return session_->request(body, response);
    }
    asio::awaitable<void> wait_closed() override { return session_->wait_closed(); }
    asio::awaitable<void> close() override { return session_->close(); }

  private:
    std::shared_ptr<ClientSession<Stream>> session_;
};

// --- server -------------------------------------------------------------------------------------

// Traits requirements (see systems/tcp.cpp and systems/tls.cpp):
//   using Stream = ...;
//   static constexpr bool has_handshake;
//   Stream make_server_stream(tcp::socket) const;
//   asio::awaitable<error_code> server_handshake(Stream&) const;
template <typename Traits>
class ServerSession final : public std::enable_shared_from_this<ServerSession<Traits>>,
                            private FrameSink {
  public:
    using Stream = typename Traits::Stream;

    ServerSession(Stream stream, ServerMode mode) : io_(std::move(stream)), mode_(mode) {}

    asio::awaitable<void> run(const Traits& traits) {
        using namespace asio::experimental::awaitable_operators;
        if constexpr (Traits::has_handshake) {
            asio::steady_timer deadline(io_.executor(), k_handshake_deadline);
            deadline.async_wait([self = this->shared_from_this()](error_code ec) {
                if (!ec) {
                    self->io_.fail(asio::error::timed_out);
                }
            });
            const error_code ec = co_await traits.server_handshake(io_.stream());
            deadline.cancel();
            if (ec) {
                io_.fail(ec);
                co_return;
            }
        }
        if (mode_ == ServerMode::close_on_accept) {
            io_.shutdown();
            co_return;
        }
        co_await (io_.read_loop(*this) && io_.write_loop());
    }

    void shutdown() { io_.shutdown(); }

  private:
    error_code on_frame(std::uint64_t id, std::span<const std::uint8_t> body) override {
        // The handler: echo the body or acknowledge it with an empty one. The response is copied
        // into the output queue because `body` lives in the read buffer.
        io_.enqueue(id, mode_ == ServerMode::echo ? body : std::span<const std::uint8_t>{},
                    /*may_reference=*/false);
        return {};
    }

    std::span<std::uint8_t> large_body_buffer(std::uint64_t, std::size_t length) override {
        large_body_.resize(length);
        return large_body_;
    }

    error_code on_large_frame(std::uint64_t id, std::span<const std::uint8_t> body) override {
        return on_frame(id, body);
    }

    FrameIo<Stream> io_;
    ServerMode mode_;
    Bytes large_body_;
};

template <typename Traits>
class FramedServer final : public Server {
  public:
    FramedServer(asio::any_io_executor ex, Traits traits, ServerMode mode)
        : impl_(std::make_shared<Impl>(ex, std::move(traits), mode)) {
        impl_->start();
    }
    FramedServer(const FramedServer&) = delete;
    FramedServer& operator=(const FramedServer&) = delete;
    ~FramedServer() override { impl_->request_stop(); }

    [[nodiscard]] tcp::endpoint endpoint() const override { return impl_->endpoint; }

    asio::awaitable<void> stop() override {
        impl_->request_stop();
        co_await impl_->idle.wait();
        if (impl_->failure) {
            std::rethrow_exception(impl_->failure);
        }
    }

  private:
    using Session = ServerSession<Traits>;

    struct Impl : std::enable_shared_from_this<Impl> {
        Impl(asio::any_io_executor executor, Traits t, ServerMode m)
            : ex(executor), traits(std::move(t)), mode(m), acceptor(executor), idle(executor) {
            const tcp::endpoint local(asio::ip::address_v4::loopback(), 0);
            acceptor.open(local.protocol());
            acceptor.set_option(tcp::acceptor::reuse_address(true));
            acceptor.bind(local);
            acceptor.listen(asio::socket_base::max_listen_connections);
            endpoint = acceptor.local_endpoint();
        }

        void start() {
            ++live;
            auto self = this->shared_from_this();
            asio::co_spawn(ex, accept_loop(), [self](std::exception_ptr e) { self->done(e); });
        }

        asio::awaitable<void> accept_loop() {
            for (;;) {
                auto [ec, socket] =
                    co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
                if (ec) {
                    // Stopping, or an accept failure that would only repeat: stop listening
                    // either way; clients then see refused connections rather than a hang.
                    error_code ignored;
                    acceptor.close(ignored);
                    co_return;
                }
                socket.set_option(tcp::no_delay(true));
                auto session =
                    std::make_shared<Session>(traits.make_server_stream(std::move(socket)), mode);
                sessions.insert(session);
                ++live;
                auto self = this->shared_from_this();
                asio::co_spawn(ex, session->run(traits), [self, session](std::exception_ptr e) {
                    self->sessions.erase(session);
                    self->done(e);
                });
            }
        }

        void request_stop() {
            error_code ignored;
            acceptor.close(ignored);
            for (const auto& s : sessions) {
                s->shutdown();
            }
        }

        void done(std::exception_ptr e) {
            if (e && !failure) {
                failure = e;
            }
            if (--live == 0) {
                idle.set();
            }
        }

        asio::any_io_executor ex;
        Traits traits;
        ServerMode mode;
        tcp::acceptor acceptor;
        tcp::endpoint endpoint;
        std::unordered_set<std::shared_ptr<Session>> sessions;
        std::size_t live = 0;
        Event idle;
        std::exception_ptr failure;
    };

    std::shared_ptr<Impl> impl_;
};

}  // namespace sdmp::bench::framed
