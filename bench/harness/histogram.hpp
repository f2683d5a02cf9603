// Log-linear latency histogram (the HdrHistogram layout, reduced to what the harness needs).
//
// Values are nanoseconds. Values below 128 get one bucket each; above that every power of two is
// split into 64 equal buckets, so a bucket is at most 1/64 (1.6 %) of its value wide and the
// reported midpoint is within 0.8 % of any value that fell into it. Recording is O(1) with no
// allocation, so the measuring loop does not perturb what it measures.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace sdmp::bench {

class Histogram {
  public:
    void record(std::uint64_t value_ns) {
        ++counts_[index_of(value_ns)];
        ++total_;
    }

    void merge(const Histogram& other) {
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            counts_[i] += other.counts_[i];
        }
        total_ += other.total_;
    }

    [[nodiscard]] std::uint64_t count() const { return total_; }

    // The value at quantile q in [0, 1] (nearest-rank), as the midpoint of its bucket; 0 when
    // empty.
    [[nodiscard]] double quantile_ns(double q) const {
        if (total_ == 0) {
            return 0.0;
        }
        auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
        if (rank == 0) {
            rank = 1;
        }
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                return midpoint_of(i);
            }
        }
        return midpoint_of(counts_.size() - 1);
    }

  private:
    static constexpr std::size_t k_sub_half = 64;  // buckets per power of two above 128
    static constexpr std::size_t k_linear = 2 * k_sub_half;
    static constexpr std::size_t k_buckets = k_sub_half * 58 + k_linear;

    static std::size_t index_of(std::uint64_t v) {
        if (v < k_linear) {
            return static_cast<std::size_t>(v);
        }
        // For v >= 128, shift it down until it lies in [64, 128); bucket = 64 * shift + that.
        const auto shift = static_cast<std::size_t>(std::bit_width(v)) - 7;
        return k_sub_half * shift + static_cast<std::size_t>(v >> shift);
    }

    static double midpoint_of(std::size_t index) {
        if (index < k_linear) {
            return static_cast<double>(index);
        }
        const std::size_t shift = index / k_sub_half - 1;
        const std::size_t mantissa = index - k_sub_half * shift;
        const double width = std::ldexp(1.0, static_cast<int>(shift));
        return static_cast<double>(mantissa) * width + width / 2.0;
    }

    std::array<std::uint64_t, k_buckets> counts_{};
    std::uint64_t total_ = 0;
};

}  // namespace sdmp::bench
