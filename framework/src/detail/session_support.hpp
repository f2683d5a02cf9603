// What the session's translation units share (session*.cpp): the call operation's common
// part, the producer scope the writer looks at, and small helpers. Internal to the framework.
#pragma once

#include <exception>
#include <string>

#include "detail/session_impl.hpp"

namespace sdmp::detail {

template <typename... F>
struct Overloaded : F... {
    using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

inline std::string describe(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "exception of unknown type";
    }
}

// One call: made by the initiation on the caller's thread, then owned by the strand (inbox,
// pending_). It completes exactly once, in finish_call(), by posting the caller's handler to
// the caller's executor. Everything but the fields set before submit() is strand-only.
struct SessionImpl::CallOp : SpaceWaiter {
    enum class Phase : unsigned char { submitted, waiting_space, sent, done };

    explicit CallOp(std::shared_ptr<SessionImpl> s) : session(std::move(s)) {}

    // Space granted (release()) or the wait failed (fail_waiters()).
    void on_space() override {
        if (failed) {
            session->finish_call(*this, failed, std::nullopt);
        } else if (granted) {
            session->call_granted(*this);
        }
    }
    // Posts the handler with the outcome: an error (transport failure, `reply` empty) or a
    // reply.
    virtual void deliver(std::error_code error, Reply reply) = 0;

    std::shared_ptr<SessionImpl> session;
    // Set by the initiation.
    std::string method;
    Bytes body;
    Metadata metadata;
    bool no_compress = false;
    SteadyClock::time_point started;
    std::optional<SteadyClock::time_point> deadline;
    // Strand-only.
    std::uint64_t id = 0;
    Bytes encoded;  // the request, while it waits for queue space
    std::optional<Timer> timer;
    Phase phase = Phase::submitted;
    bool cancel_requested = false;
};

// Marks, for the writer, that the loop on the stack has more messages to queue after the current
// one (see write_loop). Strand-only; nests; never spans a co_await.
class SessionImpl::ProducerScope {
  public:
    ProducerScope(SessionImpl& session, bool more) : session_(session), more_(more) {
        if (more_)
            ++session_.producers_with_more_;
    }
    ~ProducerScope() {
        if (more_)
            --session_.producers_with_more_;
    }
    ProducerScope(const ProducerScope&) = delete;
    ProducerScope& operator=(const ProducerScope&) = delete;

  private:
    SessionImpl& session_;
    bool more_;
};

}  // namespace sdmp::detail
