// libFuzzer target for the converter on hostile uploads (services/converter/src/transcoder.hpp, input_format.hpp);
// bench/fuzz-campaign builds and runs it, on seeds that tests/fuzz/make-media-seeds makes with ffmpeg.
//
// The input is an upload, read from memory. The allow-list probe must pick an allowed demuxer or refuse with
// unsupported_format, and rewind. The conversion runs under tight limits (10 s of audio, 2 s of wall time, one
// thread, 1 MiB of MP3) and must return an MP3 within them or throw ConversionError: any other exception is a
// finding, as is a read outside the input (ASan sees the copy out of the fuzzer's exact-size buffer).

extern "C" {
#include <libavformat/avformat.h>
}

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>

#include "fuzz_check.hpp"
#include "input_format.hpp"
#include "transcoder.hpp"

namespace {

using namespace mp3c::converter;

using mp3c::fuzz::check;

class MemoryInput : public MediaInput {
  public:
    MemoryInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}
    size_t read(uint8_t* buffer, size_t size) override {
        if (position_ >= size_) return 0;  // at or past the end (a seek may go there): nothing, as at the end
        const size_t n = static_cast<size_t>(std::min<uint64_t>(size, size_ - position_));
        std::memcpy(buffer, data_ + position_, n);
        position_ += n;
        return n;
    }
    void seek(uint64_t offset) override { position_ = offset; }
    uint64_t size() const override { return size_; }
    uint64_t position() const { return position_; }

  private:
    const uint8_t* data_;
    uint64_t size_;
    uint64_t position_ = 0;
};

// Not seekable: the muxer writes straight through, as to a pipe.
struct CountingOutput : MediaOutput {
    uint64_t bytes = 0;
    void write(const uint8_t*, size_t size) override { bytes += size; }
};

void probe(const uint8_t* data, size_t size) {
    MemoryInput input(data, size);
    try {
        const AVInputFormat* format = probe_allowed_format(input);
        bool allowed = false;
        for (const AllowedFormat& f : allowed_formats())
            allowed = allowed || av_find_input_format(std::string(f.demuxer).c_str()) == format;
        check(format != nullptr && allowed, "the probe chose a demuxer outside the allow-list");
    } catch (const ConversionError& e) {
        check(e.kind() == ConversionError::Kind::unsupported_format, "the probe failed other than unsupported_format");
        check(std::strlen(e.what()) > 0, "a refusal without a reason");
    }
    check(input.position() == 0, "the probe did not rewind the input to 0");
    const auto head = std::string_view(reinterpret_cast<const char*>(data), std::min<size_t>(size, 4096));
    check(!describe_unsupported(head).empty(), "describe_unsupported said nothing");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    probe(data, size);

    MemoryInput input(data, size);
    CountingOutput output;
    mp3c::OutputOptions options;
    options.cover = "none";
    Limits limits;
    limits.max_duration = std::chrono::seconds(10);
    limits.timeout_floor = std::chrono::seconds(2);
    limits.threads = 1;
    limits.max_output_bytes = 1 << 20;
    const auto progress = [](double fraction) { check(fraction >= 0 && fraction <= 1, "progress outside 0..1"); };
    try {
        const ConversionResult result = convert(input, output, options, limits, progress);
        check(output.bytes > 0, "a conversion succeeded without writing an MP3");
        check(result.decoded_seconds <= 10 && result.duration_seconds >= 0 && result.duration_seconds <= 10.5,
              "a conversion past max_duration");
        check(result.channels == 1 || result.channels == 2, "an MP3 with other than 1 or 2 channels");
        check(result.sample_rate >= 8000 && result.sample_rate <= 48000, "an MP3 sample rate out of range");
        for (float peak : result.waveform.peaks) check(peak >= 0 && peak <= 1, "a waveform peak outside 0..1");
        check(result.waveform.peaks.empty() || mp3c::messages::Waveform::from_json(result.waveform.to_json()),
              "a waveform the done event cannot carry");
    } catch (const ConversionError& e) {
        check(std::strlen(e.what()) > 0, "a conversion error without a reason");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "convert threw %s (not ConversionError): %s\n", typeid(e).name(), e.what());
        std::abort();
    }
    check(output.bytes <= limits.max_output_bytes, "more MP3 bytes written than max_output_bytes");
    return 0;
}
