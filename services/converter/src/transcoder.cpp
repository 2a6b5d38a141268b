#include "transcoder.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <limits>
#include <memory>
#include <system_error>

#include "cover_art.hpp"
#include "encoder_thread.hpp"
#include "ffmpeg_io.hpp"
#include "input_format.hpp"
#include "loudness.hpp"
#include "mp3c/enum_names.hpp"
#include "mp3c/strings.hpp"
#include "peak_meter.hpp"
#include "segment_encoder.hpp"

namespace mp3c::converter {

constexpr std::array<std::string_view, 14> kKindNames = {
    "not_media",          "no_audio",          "corrupt", "too_long",          "unsupported",
    "unsupported_format", "output_too_large",  "timeout", "too_many_channels", "sample_rate_too_high",
    "too_many_streams",   "trim_out_of_range", "io",      "internal"};
static_assert(names_all(kKindNames, ConversionError::Kind::internal));

std::string_view ConversionError::kind_name() const { return name_of(kind_, kKindNames, "internal"); }

bool ConversionError::means_no_space(const std::exception& e) {
    if (auto* conversion = dynamic_cast<const ConversionError*>(&e)) return conversion->no_space();
    auto* system = dynamic_cast<const std::system_error*>(&e);
    return system != nullptr && system->code().category() == std::generic_category() &&
           (system->code().value() == ENOSPC || system->code().value() == EDQUOT);
}

namespace {

using namespace detail;

constexpr int kDefaultBitrateKbps = OutputOptions::kDefaultBitrateKbps;
constexpr int kDefaultSampleRate = OutputOptions::kDefaultSampleRate;

// Tags worth carrying over into ID3v2.
void copy_tags(const AVDictionary* from, AVDictionary** to) {
    for (const char* key : {"title", "artist", "album", "date", "album_artist", "genre", "track"}) {
        if (const AVDictionaryEntry* e = av_dict_get(from, key, nullptr, 0); e != nullptr && e->value[0] != '\0') {
            if (av_dict_get(*to, key, nullptr, 0) == nullptr) av_dict_set(to, key, e->value, 0);
        }
    }
}

int pick_sample_rate(const AVCodec* encoder, int wanted) {
    if (encoder->supported_samplerates == nullptr) return wanted;
    int best = 0;
    for (const int* r = encoder->supported_samplerates; *r != 0; ++r) {
        if (*r == wanted) return wanted;
        if (best == 0 || std::abs(*r - wanted) < std::abs(best - wanted)) best = *r;
    }
    return best;
}

AVSampleFormat pick_sample_format(const AVCodec* encoder) {
    if (encoder->sample_fmts == nullptr) return AV_SAMPLE_FMT_FLTP;
    for (const AVSampleFormat* f = encoder->sample_fmts; *f != AV_SAMPLE_FMT_NONE; ++f) {
        if (*f == AV_SAMPLE_FMT_FLTP) return *f;
    }
    return encoder->sample_fmts[0];
}

// Every audio decoder's name, for AVFormatContext::codec_whitelist: while it looks for the streams' parameters,
// avformat_find_stream_info() opens decoders, and an upload never needs its video decoded (less untrusted data through
// big decoders, and less work).
const std::string& audio_decoder_names() {
    static const std::string names = [] {
        std::string out;
        void* at = nullptr;
        while (const AVCodec* codec = av_codec_iterate(&at)) {
            if (!av_codec_is_decoder(codec) || codec->type != AVMEDIA_TYPE_AUDIO) continue;
            if (!out.empty()) out += ',';
            out += codec->name;
        }
        return out;
    }();
    return names;
}

// One run over the audio. Loudness normalisation takes more than one: measuring passes decode and resample but do not
// encode, and the last applies the gain (and the limiter) between the resampler and the encoder.
struct Pass {
    bool encode = true;
    bool measure = false;            // meter what goes to the encoder (ConversionResult's measured levels)
    bool measure_true_peak = false;  // the meter's true peak too (4x oversampled: costs more)
    std::optional<double> gain_db;   // set: through a Normaliser
    bool limit = false;              // the Normaliser's limiter, at ceiling_dbtp
    double ceiling_dbtp = 0;
    const CoverImage* cover = nullptr;  // the MP3's cover (find_cover, once per conversion)
};

// What a pass measured.
struct Measured {
    std::optional<double> lufs, true_peak_dbtp;
    bool limited = false;
};

class Transcoder;

// What FFmpeg reports about an upload's demuxing reaches the Transcoder that owns the context (its `opaque`); FFmpeg's
// own lines are not our log format and are dropped.
void ffmpeg_log(void* object, int level, const char* format, va_list args);

class Transcoder {
  public:
    Transcoder(MediaInput& input, MediaOutput& output, const OutputOptions& options, const Limits& limits,
               const ProgressCallback& progress, Pass pass = {})
        : options_(options), limits_(limits), progress_(progress), watchdog_(limits_), pass_(pass) {
        in_bridge_.input = &input;
        in_bridge_.watchdog = &watchdog_;
        out_bridge_.output = &output;
        out_bridge_.limit = limits_.max_output_bytes;
        if (options_.start_ms) trim_start_ = static_cast<double>(*options_.start_ms) / 1000;
        if (options_.end_ms) trim_end_ = static_cast<double>(*options_.end_ms) / 1000;
    }
    ~Transcoder() { av_channel_layout_uninit(&in_layout_); }
    Transcoder(const Transcoder&) = delete;
    Transcoder& operator=(const Transcoder&) = delete;

    ConversionResult run() {
        open_input();
        open_decoder();
        open_encoder();
        if (pass_.encode) open_output();
        configure_resampler(decoder_->ch_layout, decoder_->sample_fmt, decoder_->sample_rate);
        fifo_.reset(av_audio_fifo_alloc(encoder_->sample_fmt, encoder_->ch_layout.nb_channels, frame_size_ * 4));
        if (!fifo_) fail(Kind::internal, "out of memory");
        const int channels = encoder_->ch_layout.nb_channels;
        if (pass_.measure || pass_.gain_db) {
            if (encoder_->sample_fmt != AV_SAMPLE_FMT_FLTP) fail(Kind::internal, "loudness needs planar float audio");
            try {
                if (pass_.measure) meter_.emplace(channels, encoder_->sample_rate, pass_.measure_true_peak);
                if (pass_.gain_db) {
                    normaliser_.emplace(channels, encoder_->sample_rate, *pass_.gain_db, pass_.limit,
                                        pass_.ceiling_dbtp);
                }
            } catch (const std::runtime_error& e) {
                fail(Kind::unsupported, std::string("measuring the loudness: ") + e.what());
            }
        }
        if (pass_.encode && limits_.threads >= 2) {
            if (parallel()) {
                auto plan = SegmentPlan::for_output(frame_size_, encoder_->sample_rate, channels, limits_.threads,
                                                    limits_.segment_seconds);
                segments_ = std::make_unique<SegmentEncoder>(
                    plan, [this] { return open_segment_encoder(); }, [this](AVPacket* p) { write_packet(p); });
            } else {
                encoder_thread_ = std::make_unique<EncoderThread>([this](const AVFrame* f) { encode(f); }, 64);
            }
        }
        pump();
        if (pass_.encode) finish();
        ConversionResult result;
        result.duration_seconds = static_cast<double>(samples_encoded_) / encoder_->sample_rate;
        result.decoded_seconds = decoded_seconds_;
        result.sample_rate = encoder_->sample_rate;
        result.channels = encoder_->ch_layout.nb_channels;
        result.bitrate = encoder_->bit_rate;
        result.waveform = peaks_.waveform(encoder_->sample_rate);
        result.cover = cover_written_;
        result.chapters = chapters_;
        if (segments_) {
            const SegmentStats& stats = segments_->stats();
            result.segments = stats.segments;
            result.grown_frames = stats.grown_frames;
            result.latest_join = stats.latest_join;
            result.dropped_frames = stats.extra_frames;
        }
        return result;
    }

    Measured measured() const {
        Measured m;
        if (meter_) {
            m.lufs = meter_->integrated_lufs();
            m.true_peak_dbtp = meter_->true_peak_dbtp();
        }
        m.limited = normaliser_ && normaliser_->limited_blocks() > 0;
        return m;
    }

    // Called by ffmpeg_log for errors FFmpeg reports against this conversion's input context.
    void ffmpeg_error(const AVFormatContext* context) {
        // avformat_new_stream() refuses a stream past max_streams (the limit + 1) and says so: that is the stream
        // limit, whatever the demuxer then makes of the refusal (a failed open, or a stream it silently leaves out).
        // With the limit + 1 streams there, any error means the file already has more streams than allowed.
        if (context->nb_streams >= static_cast<unsigned>(context->max_streams)) stream_limit_hit_ = true;
    }

  private:
    // A failure as the user should hear it: the limits and refusals that caused an FFmpeg error come first, then the
    // storage's failures, then FFmpeg's own code.
    [[noreturn]] void io_or(Kind kind, const std::string& what, int code) {
        explain_limits();
        if (!in_bridge_.error.empty()) in_bridge_.fail_reading();
        if (!out_bridge_.error.empty()) out_bridge_.fail_storing();
        fail(kind, what + ": " + av_error(code));
    }

    void explain_limits() {
        if (watchdog_.abandoned()) fail(Kind::internal, "abandoned: the worker is shutting down");
        if (watchdog_.cancelled()) fail(Kind::internal, "cancelled by its owner");
        if (watchdog_.timed_out()) {
            fail(Kind::timeout, "the conversion took longer than allowed (" + timeout_words() +
                                    "): the file decodes unusually slowly");
        }
        if (!nested_open_.empty()) {
            fail(Kind::unsupported_format, "the file refers to another file or address (" + nested_open_ +
                                               "); only self-contained files are accepted");
        }
        if (stream_limit_hit_) {
            fail(Kind::too_many_streams,
                 "the file has more than " + std::to_string(limits_.max_streams) + " streams (tracks), the limit");
        }
        if (out_bridge_.over_limit) fail(Kind::output_too_large, output_limit_words());
    }

    std::string timeout_words() const {
        auto floor = std::chrono::duration_cast<std::chrono::seconds>(limits_.timeout_floor).count();
        char ratio[32];
        std::snprintf(ratio, sizeof ratio, "%g", limits_.timeout_ratio);
        return std::to_string(floor) + " s, or " + ratio + " s per second of audio";
    }

    std::string output_limit_words() const {
        std::string limit = std::to_string(limits_.max_output_bytes) + " bytes";
        if (limits_.output_limit_is_quota) {
            return "the MP3 would not fit in what is left of your storage quota (" + limit +
                   "); delete some jobs or choose a lower bitrate";
        }
        return "the MP3 would be larger than the limit of " + limit + "; choose a lower bitrate or a shorter file";
    }

    // FFmpeg opens other files or URLs through this callback (concat, HLS, DASH, image sequences, MP4 data
    // references...). An upload is read from its own bytes only: every such open is refused and remembered.
    static int refuse_nested_open(AVFormatContext* context, AVIOContext** pb, const char* url, int, AVDictionary**) {
        *pb = nullptr;
        auto* self = static_cast<Transcoder*>(context->opaque);
        if (self != nullptr && self->nested_open_.empty()) {
            self->nested_open_ = std::string(url != nullptr ? url : "").substr(0, 200);
            if (self->nested_open_.empty()) self->nested_open_ = "(no name)";
        }
        return AVERROR(EPERM);
    }

    void open_input() {
        MediaInput& input = *in_bridge_.input;
        const AVInputFormat* format = probe_allowed_format(input);  // only allowed demuxers; rewinds to 0
        in_bridge_.position = 0;
        input_io_ = make_io(&in_bridge_, false, &InputBridge::read, nullptr, &InputBridge::seek);
        AVFormatContext* raw = avformat_alloc_context();
        if (raw == nullptr) fail(Kind::internal, "out of memory");
        raw->pb = input_io_.get();
        raw->flags |= AVFMT_FLAG_CUSTOM_IO;
        raw->opaque = this;
        raw->io_open = &Transcoder::refuse_nested_open;
        raw->interrupt_callback = {&Watchdog::interrupt, &watchdog_};
        raw->max_streams = limits_.max_streams + 1;  // one over: a file with exactly the limit never trips it
        AVDictionary* settings = nullptr;
        // Second lines of defence behind the probe and io_open: the demuxer must be an allowed one, no protocol may be
        // opened from inside the file (an empty list allows none), the MP4 demuxer follows no data references, and
        // only audio decoders run while the streams are analysed.
        av_dict_set(&settings, "format_whitelist", allowed_demuxer_names().c_str(), 0);
        av_dict_set(&settings, "protocol_whitelist", "", 0);
        av_dict_set(&settings, "codec_whitelist", audio_decoder_names().c_str(), 0);
        av_dict_set(&settings, "enable_drefs", "0", 0);
        int rc = avformat_open_input(&raw, "", format, &settings);  // frees raw on failure
        av_dict_free(&settings);
        if (rc < 0) io_or(Kind::not_media, "not a video or audio file FFmpeg can read", rc);
        input_.reset(raw);
        rc = avformat_find_stream_info(input_.get(), nullptr);
        if (rc < 0) io_or(Kind::corrupt, "the file is damaged: its streams cannot be read", rc);
        check_stream_count();
        explain_limits();

        const AVCodec* decoder = nullptr;
        rc = av_find_best_stream(input_.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &decoder, 0);
        if (rc == AVERROR_STREAM_NOT_FOUND) fail(Kind::no_audio, "the file has no audio track");
        if (rc == AVERROR_DECODER_NOT_FOUND) fail(Kind::unsupported, "the audio track's format is not supported");
        if (rc < 0) io_or(Kind::corrupt, "no usable audio track", rc);
        stream_index_ = rc;
        decoder_codec_ = decoder;
        // Only the chosen audio stream is demuxed: video packets are dropped by the demuxer, never decoded.
        for (unsigned i = 0; i < input_->nb_streams; ++i) {
            if (static_cast<int>(i) != stream_index_) input_->streams[i]->discard = AVDISCARD_ALL;
        }

        AVStream* stream = input_->streams[stream_index_];
        if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) {
            source_seconds_ = static_cast<double>(stream->duration) * av_q2d(stream->time_base);
        } else if (input_->duration != AV_NOPTS_VALUE && input_->duration > 0) {
            source_seconds_ = static_cast<double>(input_->duration) / AV_TIME_BASE;
        }
        if (source_seconds_ > static_cast<double>(limits_.max_duration.count())) {
            fail(Kind::too_long, "the audio is " + std::to_string(static_cast<long long>(source_seconds_)) +
                                     " s long; the limit is " + std::to_string(limits_.max_duration.count()) + " s");
        }
        check_audio_shape(stream->codecpar->ch_layout.nb_channels, stream->codecpar->sample_rate);
    }

    void check_stream_count() {
        if (input_->nb_streams > static_cast<unsigned>(limits_.max_streams)) stream_limit_hit_ = true;
        if (stream_limit_hit_) explain_limits();
    }

    // Channels and sample rate within the limits: checked on what the file declares, and again on every decoded frame
    // (a stream may change its parameters midway).
    void check_audio_shape(int channels, int sample_rate) const {
        if (channels > limits_.max_channels) {
            fail(Kind::too_many_channels, "the audio has " + std::to_string(channels) + " channels; the limit is " +
                                              std::to_string(limits_.max_channels));
        }
        if (sample_rate > limits_.max_sample_rate) {
            fail(Kind::sample_rate_too_high, "the audio's sample rate is " + std::to_string(sample_rate) +
                                                 " Hz; the limit is " + std::to_string(limits_.max_sample_rate) +
                                                 " Hz");
        }
    }

    void open_decoder() {
        decoder_.reset(avcodec_alloc_context3(decoder_codec_));
        if (!decoder_) fail(Kind::internal, "out of memory");
        check(avcodec_parameters_to_context(decoder_.get(), input_->streams[stream_index_]->codecpar), Kind::corrupt,
              "audio parameters");
        decoder_->pkt_timebase = input_->streams[stream_index_]->time_base;
        check(avcodec_open2(decoder_.get(), decoder_codec_, nullptr), Kind::unsupported, "opening the audio decoder");
        if (decoder_->ch_layout.nb_channels <= 0 || decoder_->sample_rate <= 0) {
            fail(Kind::corrupt, "the audio track declares no channels or sample rate");
        }
        check_audio_shape(decoder_->ch_layout.nb_channels, decoder_->sample_rate);
        if (decoder_->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
            int channels = decoder_->ch_layout.nb_channels;
            av_channel_layout_uninit(&decoder_->ch_layout);
            av_channel_layout_default(&decoder_->ch_layout, channels);
        }
    }

    void open_encoder() {
        const AVCodec* codec = avcodec_find_encoder_by_name("libmp3lame");
        if (codec == nullptr) fail(Kind::internal, "this FFmpeg has no libmp3lame encoder");
        encoder_ = configured_encoder(codec);
        if (!options_.vbr_quality) {
            // A constant bitrate tells the MP3's size in advance: an output over the limit is refused before any work.
            double seconds = kept_seconds_expected();
            double expected = seconds * static_cast<double>(encoder_->bit_rate) / 8;
            if (expected > static_cast<double>(limits_.max_output_bytes)) {
                fail(Kind::output_too_large, output_limit_words() + " (" +
                                                 std::to_string(static_cast<long long>(seconds)) + " s at " +
                                                 std::to_string(encoder_->bit_rate / 1000) + " kb/s is about " +
                                                 std::to_string(static_cast<long long>(expected)) + " bytes)");
            }
        }
        if (!pass_.encode) return;  // a measuring pass needs only the shape of what the encoder would take
        check(avcodec_open2(encoder_.get(), codec, nullptr), Kind::internal, "opening the MP3 encoder");
        frame_size_ = encoder_->frame_size > 0 ? encoder_->frame_size : 1152;
    }

    // An MP3 encoder set up as the options say (not opened).
    std::unique_ptr<AVCodecContext, CodecContextFree> configured_encoder(const AVCodec* codec) const {
        std::unique_ptr<AVCodecContext, CodecContextFree> encoder(avcodec_alloc_context3(codec));
        if (!encoder) fail(Kind::internal, "out of memory");
        int channels = options_.channels.value_or(std::min(decoder_->ch_layout.nb_channels, 2));
        av_channel_layout_default(&encoder->ch_layout, channels);
        encoder->sample_rate = pick_sample_rate(codec, options_.sample_rate.value_or(kDefaultSampleRate));
        encoder->sample_fmt = pick_sample_format(codec);
        encoder->time_base = AVRational{1, encoder->sample_rate};
        if (options_.vbr_quality) {
            encoder->flags |= AV_CODEC_FLAG_QSCALE;
            encoder->global_quality = *options_.vbr_quality * FF_QP2LAMBDA;
        } else {
            encoder->bit_rate = int64_t{options_.bitrate_kbps.value_or(kDefaultBitrateKbps)} * 1000;
        }
        return encoder;
    }

    // Another encoder like encoder_, for a segment (on the segment's thread).
    std::unique_ptr<AVCodecContext, CodecContextFree> open_segment_encoder() const {
        auto encoder = configured_encoder(encoder_->codec);
        check(avcodec_open2(encoder.get(), encoder_->codec, nullptr), Kind::internal, "opening the MP3 encoder");
        return encoder;
    }

    // Segments in parallel pay off for long audio only (each join encodes about 0.4 s twice); a length the container
    // does not tell is taken as long.
    bool parallel() const {
        if (!limits_.parallel) return false;
        double seconds = kept_seconds_expected();
        return seconds <= 0 || seconds >= static_cast<double>(limits_.parallel_from.count());
    }

    void open_output() {
        output_io_ = make_io(&out_bridge_, true, nullptr, &OutputBridge::write,
                             out_bridge_.output->seekable() ? &OutputBridge::seek : nullptr);
        AVFormatContext* raw = nullptr;
        check(avformat_alloc_output_context2(&raw, nullptr, "mp3", nullptr), Kind::internal, "MP3 muxer");
        output_.reset(raw);
        output_->pb = output_io_.get();
        output_->flags |= AVFMT_FLAG_CUSTOM_IO;
        AVStream* stream = avformat_new_stream(output_.get(), nullptr);
        if (stream == nullptr) fail(Kind::internal, "out of memory");
        check(avcodec_parameters_from_context(stream->codecpar, encoder_.get()), Kind::internal, "MP3 parameters");
        stream->time_base = encoder_->time_base;
        // The user's tags first: copy_tags keeps what is set, so the source's fill only the rest.
        for (const auto& [key, value] : options_.tags.ffmpeg_metadata()) {
            check(av_dict_set(&output_->metadata, key, value.c_str(), 0), Kind::internal, "tags");
        }
        copy_tags(input_->metadata, &output_->metadata);
        copy_tags(input_->streams[stream_index_]->metadata, &output_->metadata);
        copy_chapters();
        if (pass_.cover) add_cover_stream(*pass_.cover);
        // The MP3 goes out in the I/O buffer's 64 KiB, not one write per MP3 frame (about 600 bytes): FFmpeg flushes
        // each packet by default, which cost ~23 000 write calls for 10 minutes at 192 kb/s.
        output_->flush_packets = 0;
        int rc = avformat_write_header(output_.get(), nullptr);
        if (rc < 0) io_or(Kind::internal, "writing the MP3 header", rc);
        // The muxer holds the audio back until the picture has come: it goes first.
        if (pass_.cover) write_cover(*pass_.cover);
    }

    // The cover as the muxer takes it: a second stream, a picture attached to the file, written into ID3v2 as APIC.
    void add_cover_stream(const CoverImage& cover) {
        AVStream* stream = avformat_new_stream(output_.get(), nullptr);
        if (stream == nullptr) fail(Kind::internal, "out of memory");
        stream->codecpar->codec_type = AVMEDIA_TYPE_VIDEO;
        stream->codecpar->codec_id = cover.png ? AV_CODEC_ID_PNG : AV_CODEC_ID_MJPEG;
        stream->codecpar->width = cover.width;
        stream->codecpar->height = cover.height;
        stream->disposition = AV_DISPOSITION_ATTACHED_PIC;
        av_dict_set(&stream->metadata, "comment", "Cover (front)", 0);
    }

    void write_cover(const CoverImage& cover) {
        PacketPtr packet(av_packet_alloc());
        if (!packet || av_new_packet(packet.get(), static_cast<int>(cover.data.size())) < 0) {
            fail(Kind::internal, "out of memory");
        }
        std::copy(cover.data.begin(), cover.data.end(), packet->data);
        packet->stream_index = 1;
        packet->flags |= AV_PKT_FLAG_KEY;
        int rc = av_write_frame(output_.get(), packet.get());
        if (rc < 0) io_or(Kind::io, "writing the cover", rc);
        cover_written_ = true;
    }

    // The source's chapters, as far as they overlap the trim and moved with it, into the MP3 (the muxer writes them
    // as ID3v2 CTOC and CHAP frames with their titles). Unless the user asked for none.
    void copy_chapters() {
        static constexpr unsigned kMaxChapters = 255;  // the CTOC frame counts its entries in one byte
        static constexpr size_t kMaxTitleBytes = 250;
        if (options_.chapters.value_or("keep") == "none") return;
        const double from = trim_start_.value_or(0);
        const double to = trim_end_.value_or(std::numeric_limits<double>::infinity());
        for (unsigned i = 0; i < input_->nb_chapters && output_->nb_chapters < kMaxChapters; ++i) {
            const AVChapter* chapter = input_->chapters[i];
            if (chapter->time_base.num <= 0 || chapter->time_base.den <= 0) continue;  // the file's own numbers
            double start = std::max(from, static_cast<double>(chapter->start) * av_q2d(chapter->time_base));
            double end = std::min(to, static_cast<double>(chapter->end) * av_q2d(chapter->time_base));
            if (!std::isfinite(start) || !std::isfinite(end) || !(end > start) || end - start > 1e7) continue;
            auto* copy = static_cast<AVChapter*>(av_mallocz(sizeof(AVChapter)));
            if (copy == nullptr) fail(Kind::internal, "out of memory");
            copy->id = static_cast<int64_t>(output_->nb_chapters);
            copy->time_base = AVRational{1, 1000};
            copy->start = std::llround((start - from) * 1000);
            copy->end = std::llround((end - from) * 1000);
            ChapterMark mark{.start_seconds = static_cast<double>(copy->start) / 1000,
                             .end_seconds = static_cast<double>(copy->end) / 1000,
                             .source_start_seconds = start,
                             .source_end_seconds = end};
            if (const AVDictionaryEntry* title = av_dict_get(chapter->metadata, "title", nullptr, 0)) {
                mark.title = std::string(utf8_prefix(title->value, kMaxTitleBytes));
                av_dict_set(&copy->metadata, "title", mark.title.c_str(), 0);
            }
            // avformat_free_context frees the array, each chapter and its metadata.
            void* grown = av_realloc_array(output_->chapters, output_->nb_chapters + 1, sizeof(AVChapter*));
            if (grown == nullptr) {
                av_dict_free(&copy->metadata);
                av_free(copy);
                fail(Kind::internal, "out of memory");
            }
            output_->chapters = static_cast<AVChapter**>(grown);
            output_->chapters[output_->nb_chapters++] = copy;
            chapters_.push_back(std::move(mark));
        }
    }

    // The resampler for decoded audio of this shape. A stream that changes shape midway (a TV recording switching
    // from 5.1 to stereo at an advertisement) gets a new one after the old one is drained.
    void configure_resampler(const AVChannelLayout& layout, AVSampleFormat format, int rate) {
        if (resampler_) resample(nullptr);  // what the previous configuration still holds
        SwrContext* raw = nullptr;
        check(swr_alloc_set_opts2(&raw, &encoder_->ch_layout, encoder_->sample_fmt, encoder_->sample_rate,
                                  const_cast<AVChannelLayout*>(&layout), format, rate, 0, nullptr),
              Kind::internal, "resampler");
        resampler_.reset(raw);
        check(swr_init(resampler_.get()), Kind::unsupported, "resampling this audio");
        check(av_channel_layout_copy(&in_layout_, &layout), Kind::internal, "layout");
        in_format_ = format;
        in_rate_ = rate;
    }

    // How long the MP3 will be, as far as the container tells before decoding: the source's length, trimmed.
    double kept_seconds_expected() const {
        if (source_seconds_ <= 0) return 0;  // unknown: the output limit is enforced while writing
        double end = trim_end_ && (source_seconds_ <= 0 || *trim_end_ < source_seconds_) ? *trim_end_ : source_seconds_;
        return std::max(0.0, end - trim_start_.value_or(0));
    }

    static std::string seconds_words(double seconds) {
        char text[32];
        std::snprintf(text, sizeof text, "%.3f", seconds);
        std::string s = text;
        while (s.back() == '0') s.pop_back();
        if (s.back() == '.') s.pop_back();
        return s + " s";
    }

    // A trim starting this far in seeks (where the container can) rather than decoding everything before it.
    static constexpr double kSeekFromSeconds = 10;
    // Decoded from this much before the start and dropped: decoders need a few frames to settle after a seek.
    static constexpr double kPreRollSeconds = 2;

    // Seeks to a keyframe at or before `seconds` into the audio stream; false when the container cannot (the
    // caller then decodes from the beginning).
    bool seek_before(double seconds) {
        if ((input_->iformat->flags & AVFMT_NOTIMESTAMPS) != 0) return false;
        const AVStream* stream = input_->streams[stream_index_];
        int64_t ts = av_rescale_q(std::llround(seconds * AV_TIME_BASE), AV_TIME_BASE_Q, stream->time_base);
        if (stream->start_time != AV_NOPTS_VALUE) ts += stream->start_time;
        if (av_seek_frame(input_.get(), stream_index_, ts, AVSEEK_FLAG_BACKWARD) < 0) return false;
        avcodec_flush_buffers(decoder_.get());
        return true;
    }

    void pump() {
        PacketPtr packet(av_packet_alloc());
        FramePtr frame(av_frame_alloc());
        if (!packet || !frame) fail(Kind::internal, "out of memory");
        if (trim_start_ && *trim_start_ >= kSeekFromSeconds) {
            locate_next_frame_ = seek_before(*trim_start_ - kPreRollSeconds);
            progress_from_ = *trim_start_;
        }
        for (bool again = true; again;) {
            for (;;) {
                int rc = av_read_frame(input_.get(), packet.get());
                if (rc == AVERROR_EOF) break;
                if (rc < 0) {
                    explain_limits();
                    if (!in_bridge_.error.empty()) io_or(Kind::io, "reading", rc);
                    break;  // a damaged tail: keep what decoded, judged below
                }
                check_stream_count();  // a transport stream announces streams as it goes
                if (packet->stream_index == stream_index_) {
                    rc = avcodec_send_packet(decoder_.get(), packet.get());
                    if (rc < 0 && rc != AVERROR(EAGAIN) && rc != AVERROR_INVALIDDATA) {
                        io_or(Kind::corrupt, "decoding the audio", rc);
                    }
                    drain_decoder(frame.get());
                }
                av_packet_unref(packet.get());
                if (seek_missed_) decode_from_the_beginning();
                if (past_the_end_) break;  // trimmed: the rest is neither read nor decoded
            }
            avcodec_send_packet(decoder_.get(), nullptr);
            drain_decoder(frame.get());
            // A seek that found nothing usable (a start past the end, say): again from the beginning.
            again = seek_missed_ || locate_next_frame_;
            if (again) decode_from_the_beginning();
        }
        resample(nullptr);  // what the resampler still holds
        if (normaliser_) normaliser_->finish(to_fifo_);
        encode_fifo(true);
        submit(nullptr);  // flush the encoder
        if (encoder_thread_) encoder_thread_->wait();

        double decoded = position_;  // how far into the source decoding went (it may have skipped ahead)
        if (samples_in_ == 0) fail(Kind::corrupt, "the audio track could not be decoded");
        // A container that promises more than could be decoded was cut short (an interrupted upload or copy).
        if (!past_the_end_ && source_seconds_ > 2.0 && decoded < source_seconds_ * 0.9 &&
            decoded < source_seconds_ - 1.0) {
            fail(Kind::corrupt, "the file is truncated or damaged: only " + std::to_string(static_cast<int>(decoded)) +
                                    " of " + std::to_string(static_cast<int>(source_seconds_)) +
                                    " s of audio could be decoded");
        }
        if (samples_kept_ == 0 && trim_start_) {
            fail(Kind::trim_out_of_range, "start (" + seconds_words(*trim_start_) +
                                              ") is not before the end of the audio (" + seconds_words(decoded) + ")");
        }
    }

    // After a seek that cannot be trusted (it landed after the start, or the frame there has no timestamp, or it
    // found nothing): back to the first packet, counting samples from zero as without a seek.
    void decode_from_the_beginning() {
        if (av_seek_frame(input_.get(), -1, input_->start_time == AV_NOPTS_VALUE ? 0 : input_->start_time,
                          AVSEEK_FLAG_BACKWARD) < 0) {
            fail(Kind::unsupported, "trimming this file: it cannot be read again from its start");
        }
        avcodec_flush_buffers(decoder_.get());
        locate_next_frame_ = seek_missed_ = false;
        position_ = 0;
        progress_from_ = 0;
    }

    void drain_decoder(AVFrame* frame) {
        for (;;) {
            int rc = avcodec_receive_frame(decoder_.get(), frame);
            if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
            if (rc == AVERROR_INVALIDDATA) continue;  // a damaged frame: skip it, the length check below judges
            if (rc < 0) io_or(Kind::corrupt, "decoding the audio", rc);
            if (frame->sample_rate <= 0 || frame->ch_layout.nb_channels <= 0) {
                av_frame_unref(frame);
                continue;  // nothing a resampler could be set up for
            }
            check_audio_shape(frame->ch_layout.nb_channels, frame->sample_rate);
            samples_in_ += frame->nb_samples;
            double frame_start = position_;
            if (locate_next_frame_) {  // the first frame after a seek: where it is, from its timestamp
                const AVStream* stream = input_->streams[stream_index_];
                int64_t pts = frame->best_effort_timestamp;
                if (pts != AV_NOPTS_VALUE && stream->start_time != AV_NOPTS_VALUE) pts -= stream->start_time;
                frame_start = static_cast<double>(pts) * av_q2d(stream->time_base);
                if (pts == AV_NOPTS_VALUE || !(frame_start <= *trim_start_)) {
                    seek_missed_ = true;  // the caller starts again from the beginning
                    av_frame_unref(frame);
                    return;
                }
                locate_next_frame_ = false;
            }
            decoded_seconds_ += static_cast<double>(frame->nb_samples) / frame->sample_rate;
            position_ = frame_start + static_cast<double>(frame->nb_samples) / frame->sample_rate;
            if (decoded_seconds_ > static_cast<double>(limits_.max_duration.count())) {
                fail(Kind::too_long,
                     "the audio is longer than the limit of " + std::to_string(limits_.max_duration.count()) + " s");
            }
            watchdog_.decoded(decoded_seconds_);
            if (watchdog_.expired()) explain_limits();
            // The samples of this frame inside the trim [start, end), counted from the first decoded sample.
            int first = 0, last = frame->nb_samples;
            auto sample_at = [&](double t) {
                return static_cast<int>(
                    std::clamp<int64_t>(std::llround((t - frame_start) * frame->sample_rate), 0, frame->nb_samples));
            };
            if (trim_start_) first = sample_at(*trim_start_);
            if (trim_end_) last = sample_at(*trim_end_);
            if (last > first) {
                resample(frame, first, last - first);
                samples_kept_ += last - first;
            }
            if (trim_end_ && position_ >= *trim_end_) past_the_end_ = true;
            av_frame_unref(frame);
            encode_fifo(false);
            double until =
                trim_end_ && (source_seconds_ <= 0 || *trim_end_ < source_seconds_) ? *trim_end_ : source_seconds_;
            if (progress_ && until > progress_from_) {
                progress_(std::clamp((position_ - progress_from_) / (until - progress_from_), 0.0, 1.0));
            }
        }
    }

    // Whether the resampler is set up for audio of this frame's shape (checked per frame, without copying anything).
    bool takes(const AVFrame& frame) const {
        const AVChannelLayout* layout = &frame.ch_layout;
        AVChannelLayout defaulted{};  // an unspecified layout was configured as the default for its channel count
        if (layout->order == AV_CHANNEL_ORDER_UNSPEC) {
            av_channel_layout_default(&defaulted, layout->nb_channels);  // no allocation: a native or unspecified order
            layout = &defaulted;
        }
        return av_channel_layout_compare(layout, &in_layout_) == 0 && frame.format == in_format_ &&
               frame.sample_rate == in_rate_;
    }

    // Resamples `count` samples of the frame from `offset` (all of them when count < 0) into the FIFO; nullptr
    // drains the resampler.
    void resample(const AVFrame* frame, int offset = 0, int count = -1) {
        if (frame != nullptr && !takes(*frame)) {
            AVChannelLayout layout{};
            check(av_channel_layout_copy(&layout, &frame->ch_layout), Kind::internal, "layout");
            if (layout.order == AV_CHANNEL_ORDER_UNSPEC) {
                int channels = layout.nb_channels;
                av_channel_layout_uninit(&layout);
                av_channel_layout_default(&layout, channels);
            }
            configure_resampler(layout, static_cast<AVSampleFormat>(frame->format), frame->sample_rate);
            av_channel_layout_uninit(&layout);
        }
        int in_samples = frame ? (count < 0 ? frame->nb_samples - offset : count) : 0;
        std::vector<const uint8_t*> in;  // the planes from `offset` (only a trim's cut frames need them)
        if (frame != nullptr && offset > 0) {
            auto format = static_cast<AVSampleFormat>(frame->format);
            bool planar = av_sample_fmt_is_planar(format) != 0;
            int planes = planar ? frame->ch_layout.nb_channels : 1;
            int stride = av_get_bytes_per_sample(format) * (planar ? 1 : frame->ch_layout.nb_channels);
            for (int p = 0; p < planes; ++p) in.push_back(frame->extended_data[p] + offset * stride);
        }
        int capacity = swr_get_out_samples(resampler_.get(), in_samples);
        if (capacity <= 0) return;
        uint8_t** planes = nullptr;
        int linesize = 0;
        check(av_samples_alloc_array_and_samples(&planes, &linesize, encoder_->ch_layout.nb_channels, capacity,
                                                 encoder_->sample_fmt, 0),
              Kind::internal, "out of memory");
        std::unique_ptr<uint8_t*, void (*)(uint8_t**)> guard(planes, [](uint8_t** p) {
            av_freep(&p[0]);
            av_freep(&p);
        });
        const uint8_t** from = frame == nullptr ? nullptr
                               : offset > 0     ? in.data()
                                                : const_cast<const uint8_t**>(frame->extended_data);
        int converted = swr_convert(resampler_.get(), planes, capacity, from, in_samples);
        check(converted, Kind::corrupt, "resampling");
        if (converted <= 0) return;
        if (normaliser_) {
            normaliser_->process(reinterpret_cast<const float* const*>(planes), converted, to_fifo_);
        } else {
            to_fifo(reinterpret_cast<const float* const*>(planes), converted);
        }
    }

    void to_fifo(const float* const* planes, int samples) {
        if (av_audio_fifo_write(fifo_.get(), reinterpret_cast<void**>(const_cast<float**>(planes)), samples) <
            samples) {
            fail(Kind::internal, "out of memory");
        }
    }

    // Feeds the encoder whole frames from the FIFO (and at the end the shorter last one).
    void encode_fifo(bool flush) {
        while (av_audio_fifo_size(fifo_.get()) >= frame_size_ || (flush && av_audio_fifo_size(fifo_.get()) > 0)) {
            int samples = std::min(av_audio_fifo_size(fifo_.get()), frame_size_);
            FramePtr frame(av_frame_alloc());
            if (!frame) fail(Kind::internal, "out of memory");
            frame->nb_samples = samples;
            frame->format = encoder_->sample_fmt;
            frame->sample_rate = encoder_->sample_rate;
            check(av_channel_layout_copy(&frame->ch_layout, &encoder_->ch_layout), Kind::internal, "layout");
            check(av_frame_get_buffer(frame.get(), 0), Kind::internal, "out of memory");
            if (av_audio_fifo_read(fifo_.get(), reinterpret_cast<void**>(frame->data), samples) < samples) {
                fail(Kind::internal, "audio buffer underrun");
            }
            if (encoder_->sample_fmt == AV_SAMPLE_FMT_FLTP) {  // always, with libmp3lame (pick_sample_format)
                const auto* planes = reinterpret_cast<const float* const*>(frame->data);
                if (pass_.encode) peaks_.add(planes, encoder_->ch_layout.nb_channels, samples);
                if (meter_) meter_->add(planes, samples);
            }
            frame->pts = samples_encoded_;
            samples_encoded_ += samples;
            submit(std::move(frame));
        }
    }

    void submit(FramePtr frame) {
        if (!pass_.encode) return;  // a measuring pass
        if (segments_) {
            segments_->push(std::move(frame));
        } else if (encoder_thread_) {
            encoder_thread_->push(std::move(frame));
        } else {
            encode(frame.get());
        }
    }

    // On the encoder thread when there is one: touches only the encoder, the muxer and the output.
    [[noreturn]] void output_failed(Kind kind, const std::string& what, int code) {
        if (out_bridge_.over_limit) fail(Kind::output_too_large, output_limit_words());
        if (!out_bridge_.error.empty()) out_bridge_.fail_storing();
        fail(kind, what + ": " + av_error(code));
    }

    void encode(const AVFrame* frame) {
        int rc = avcodec_send_frame(encoder_.get(), frame);
        if (rc < 0 && rc != AVERROR_EOF) output_failed(Kind::internal, "encoding", rc);
        PacketPtr packet(av_packet_alloc());
        if (!packet) fail(Kind::internal, "out of memory");
        for (;;) {
            rc = avcodec_receive_packet(encoder_.get(), packet.get());
            if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
            if (rc < 0) output_failed(Kind::internal, "encoding", rc);
            write_packet(packet.get());
        }
    }

    void write_packet(AVPacket* packet) {
        packet->stream_index = 0;
        av_packet_rescale_ts(packet, encoder_->time_base, output_->streams[0]->time_base);
        int rc = av_write_frame(output_.get(), packet);
        if (rc < 0) output_failed(Kind::io, "writing the MP3", rc);
    }

    void finish() {
        int rc = av_write_trailer(output_.get());
        if (rc < 0) io_or(Kind::io, "finishing the MP3", rc);
        avio_flush(output_io_.get());
        if (!out_bridge_.error.empty()) out_bridge_.fail_storing();
    }

    OutputOptions options_;
    Limits limits_;
    ProgressCallback progress_;  // a copy: a pass of loudness normalisation gets a temporary
    Watchdog watchdog_;          // after limits_, which it reads
    InputBridge in_bridge_;
    OutputBridge out_bridge_;
    // Declaration order is destruction order reversed: the format contexts go before the I/O contexts they use.
    std::unique_ptr<AVIOContext, IoContextFree> input_io_;
    std::unique_ptr<AVIOContext, IoContextFree> output_io_;
    std::unique_ptr<AVFormatContext, InputContextFree> input_;
    std::unique_ptr<AVFormatContext, OutputContextFree> output_;
    std::unique_ptr<AVCodecContext, CodecContextFree> decoder_;
    std::unique_ptr<AVCodecContext, CodecContextFree> encoder_;
    std::unique_ptr<SwrContext, SwrFree> resampler_;
    std::unique_ptr<AVAudioFifo, FifoFree> fifo_;
    const AVCodec* decoder_codec_ = nullptr;
    int stream_index_ = -1;
    int frame_size_ = 1152;
    double source_seconds_ = 0;
    int64_t samples_in_ = 0;
    int64_t samples_encoded_ = 0;
    PeakMeter peaks_;  // the waveform of what is encoded
    bool cover_written_ = false;
    std::vector<ChapterMark> chapters_;  // what copy_chapters wrote
    Pass pass_;
    std::optional<LoudnessMeter> meter_;
    std::optional<Normaliser> normaliser_;
    const Normaliser::Sink to_fifo_ = [this](const float* const* planes, int samples) { to_fifo(planes, samples); };
    double decoded_seconds_ = 0;  // summed per frame: the sample rate may change midway
    // The trim, in seconds of decoded audio; samples kept inside it; whether decoding has passed its end.
    std::optional<double> trim_start_, trim_end_;
    int64_t samples_kept_ = 0;
    bool past_the_end_ = false;
    double position_ = 0;             // seconds into the source at the end of the last decoded frame
    bool locate_next_frame_ = false;  // after a seek: the next frame's timestamp tells the position
    bool seek_missed_ = false;        // that frame was no use: decode from the beginning instead
    double progress_from_ = 0;        // where progress starts counting (the start of a trim that seeked)
    // The shape of the audio the resampler takes now.
    AVChannelLayout in_layout_{};
    AVSampleFormat in_format_ = AV_SAMPLE_FMT_NONE;
    int in_rate_ = 0;
    std::string nested_open_;  // the first file or URL the demuxer tried to open (refused)
    bool stream_limit_hit_ = false;
    // Last: stopped before the contexts they use are freed.
    std::unique_ptr<EncoderThread> encoder_thread_;
    std::unique_ptr<SegmentEncoder> segments_;
};

void ffmpeg_log(void* object, int level, const char*, va_list) {
    if (object == nullptr || level > AV_LOG_ERROR) return;
    // Only errors about an input context of ours: its class is the format context's and its opaque our Transcoder
    // (output contexts have none).
    if (*static_cast<const AVClass* const*>(object) != avformat_get_class()) return;
    auto* context = static_cast<AVFormatContext*>(object);
    if (context->iformat == nullptr || context->opaque == nullptr) return;
    static_cast<Transcoder*>(context->opaque)->ffmpeg_error(context);
}

// Progress of one pass as a part [from, to] of the whole conversion's.
ProgressCallback part_of(const ProgressCallback& progress, double from, double to) {
    if (!progress) return nullptr;
    return [&progress, from, to](double fraction) { progress(from + (to - from) * fraction); };
}

// Loudness normalisation in passes over the same input (it is read again from its start each time). First the
// audio as the encoder would get it is measured: integrated loudness and true peak. The gain is the target less that
// loudness (at most kMaxGainDb). If the gained true peak stays under the ceiling, the last pass applies the gain and
// nothing else, which hits the target exactly. Otherwise the limiter holds the peaks down, which lowers the loudness
// a little: up to three more measuring passes with the limiter correct the gain by what they missed, then the last
// pass encodes. The measuring passes decode and resample but do not encode (most of the work), so two passes cost
// about 1.2 times one, and five about 1.6 times.
constexpr double kMaxGainDb = 30;        // a recording quieter than that under its target is mostly noise
constexpr double kCloseEnoughLu = 0.3;   // a limited pass this near the target needs no correction
constexpr int kTrials = 3;               // measuring passes with the limiter, at most
constexpr double kPeakHeadroomDb = 0.1;  // gain only while the gained true peak stays this far under the ceiling

ConversionResult normalised(MediaInput& input, MediaOutput& output, const OutputOptions& options, const Limits& limits,
                            const ProgressCallback& progress, const CoverImage* cover) {
    messages::Loudness report;
    report.target_lufs = *options.loudness_lufs;
    report.true_peak_ceiling_dbtp = options.true_peak_dbtp.value_or(OutputOptions::kDefaultTruePeak);
    Transcoder first(input, output, options, limits, part_of(progress, 0, 0.15),
                     Pass{.encode = false, .measure = true, .measure_true_peak = true});
    first.run();
    Measured in = first.measured();
    report.input_lufs = in.lufs;
    report.input_true_peak_dbtp = in.true_peak_dbtp;

    // The last pass meters its true peak only when limiting: with a gain alone it is the input's plus the gain.
    Pass last{.encode = true, .measure = true, .ceiling_dbtp = report.true_peak_ceiling_dbtp, .cover = cover};
    double start = 0.15;
    if (in.lufs) {  // silence, or too short to measure, is left as it is
        double gain = std::min(report.target_lufs - *in.lufs, kMaxGainDb);
        bool limit = !in.true_peak_dbtp || *in.true_peak_dbtp + gain > report.true_peak_ceiling_dbtp - kPeakHeadroomDb;
        // Each trial's miss corrects the gain; after the first, by the slope the two last trials show (the limiter
        // takes more the more gain there is, so a plain correction falls short).
        std::optional<std::pair<double, double>> before;  // the previous trial's gain and loudness
        for (int i = 0; limit && i < kTrials; ++i) {
            Transcoder trial(input, output, options, limits, part_of(progress, start, start + 0.05),
                             Pass{.encode = false,
                                  .measure = true,
                                  .gain_db = gain,
                                  .limit = true,
                                  .ceiling_dbtp = report.true_peak_ceiling_dbtp});
            trial.run();
            start += 0.05;
            auto reached = trial.measured().lufs;
            if (!reached || std::abs(report.target_lufs - *reached) < kCloseEnoughLu) break;
            double slope = 1;
            if (before && gain != before->first) {
                slope = std::clamp((*reached - before->second) / (gain - before->first), 0.2, 1.0);
            }
            before = std::pair{gain, *reached};
            gain = std::min(gain + (report.target_lufs - *reached) / slope, kMaxGainDb);
        }
        last.gain_db = gain;
        last.limit = last.measure_true_peak = limit;
        report.gain_db = gain;
    }
    Transcoder encode(input, output, options, limits, part_of(progress, start, 1), last);
    ConversionResult result = encode.run();
    Measured out = encode.measured();
    report.output_lufs = out.lufs;
    report.output_true_peak_dbtp = out.true_peak_dbtp;
    if (!last.measure_true_peak && in.true_peak_dbtp)
        report.output_true_peak_dbtp = *in.true_peak_dbtp + report.gain_db;
    report.limited = out.limited;
    result.loudness = report;
    return result;
}

// Runs `encode(limits)`; when parallel segments could not be joined (JoinFailed), empties the output and runs it
// again with one encoder. Progress stays where it had got to until the second run passes it.
template <typename Encode>
ConversionResult or_with_one_encoder(MediaOutput& output, const Limits& limits, const ProgressCallback& progress,
                                     Encode&& encode) {
    double reached = 0;
    ProgressCallback monotonic = progress ? ProgressCallback([&](double f) {
        reached = std::max(reached, f);
        progress(reached);
    })
                                          : nullptr;
    try {
        return encode(limits, monotonic);
    } catch (const JoinFailed&) {
        if (!output.restart()) throw;
        Limits alone = limits;
        alone.parallel = false;
        return encode(alone, monotonic);
    }
}

ConversionResult whole(MediaInput& input, MediaOutput& output, const OutputOptions& options, const Limits& limits,
                       const ProgressCallback& progress, const CoverImage* cover) {
    return or_with_one_encoder(output, limits, progress, [&](const Limits& l, const ProgressCallback& p) {
        if (!options.loudness_lufs) return Transcoder(input, output, options, l, p, Pass{.cover = cover}).run();
        return normalised(input, output, options, l, p, cover);
    });
}

// The parts of a split (chapters=split), after the whole: each chapter of the whole MP3, cut from the source as a
// trim would, with the whole's loudness gain (and limiter, where it acted), so that parts and whole sound the same.
// Parts share what the output limit leaves after the whole.
void split(MediaInput& input, const OutputOptions& options, const Limits& limits, const ProgressCallback& progress,
           PartSink& sink, ConversionResult& result, uint64_t whole_bytes, const CoverImage* cover) {
    std::vector<PartPlan> plans;
    std::vector<const ChapterMark*> marks;
    for (const ChapterMark& chapter : result.chapters) {
        double end = std::min(chapter.end_seconds, result.duration_seconds);
        if (!(end > chapter.start_seconds)) continue;  // past the audio's end
        PartPlan plan;
        plan.index = static_cast<int>(plans.size()) + 1;
        plan.title = chapter.title.empty() ? "Part " + std::to_string(plan.index) : chapter.title;
        plan.start_seconds = chapter.start_seconds;
        plan.end_seconds = end;
        plans.push_back(std::move(plan));
        marks.push_back(&chapter);
    }
    double total = 0;
    for (auto& plan : plans) {
        plan.count = static_cast<int>(plans.size());
        total += plan.end_seconds - plan.start_seconds;
    }
    uint64_t used = whole_bytes;
    double done = 0;
    for (size_t i = 0; i < plans.size(); ++i) {
        const PartPlan& plan = plans[i];
        OutputOptions part = options;
        part.start_ms = std::llround(marks[i]->source_start_seconds * 1000);
        part.end_ms =
            std::llround(marks[i]->source_start_seconds * 1000 + (plan.end_seconds - plan.start_seconds) * 1000);
        part.chapters = "none";
        part.tags.title = plan.title;
        part.tags.track = std::to_string(plan.index) + "/" + std::to_string(plan.count);
        Limits part_limits = limits;
        if (used >= limits.max_output_bytes)
            part_limits.max_output_bytes = 0;
        else
            part_limits.max_output_bytes = limits.max_output_bytes - used;
        Pass pass{.cover = cover};
        if (result.loudness) {
            pass.gain_db = result.loudness->gain_db;
            pass.limit = result.loudness->limited;
            pass.ceiling_dbtp = result.loudness->true_peak_ceiling_dbtp;
        }
        double length = plan.end_seconds - plan.start_seconds;
        std::unique_ptr<MediaOutput> output = sink.open(plan);
        or_with_one_encoder(*output, part_limits, part_of(progress, done / total, (done + length) / total),
                            [&](const Limits& l, const ProgressCallback& p) {
                                return Transcoder(input, *output, part, l, p, pass).run();
                            });
        messages::Part kept = sink.commit(plan, *output);
        kept.index = plan.index;
        kept.title = plan.title;
        kept.start_seconds = plan.start_seconds;
        kept.duration_seconds = length;
        used += kept.size;
        result.parts.push_back(std::move(kept));
        done += length;
    }
}

}  // namespace

ConversionResult convert(MediaInput& input, MediaOutput& output, const OutputOptions& options, const Limits& limits,
                         const ProgressCallback& progress, PartSink* parts) {
    static const bool quiet = [] {
        av_log_set_callback(&ffmpeg_log);  // FFmpeg's own messages are not our log format; failures carry reasons
        return true;
    }();
    (void)quiet;
    std::optional<CoverImage> cover;
    std::string cover_problem;
    if (options.cover.value_or("auto") == "auto") cover = find_cover(input, limits, cover_problem);
    const CoverImage* picture = cover ? &*cover : nullptr;
    auto with_cover_problem = [&](ConversionResult result) {
        result.cover_problem = cover_problem;
        return result;
    };
    if (parts == nullptr || options.chapters != "split") {
        return with_cover_problem(whole(input, output, options, limits, progress, picture));
    }
    // The whole MP3's size decides what the parts may take of the output limit: it counts what the output was given.
    struct Counted : MediaOutput {
        MediaOutput& to;
        uint64_t end = 0, at = 0;
        explicit Counted(MediaOutput& o) : to(o) {}
        void write(const uint8_t* data, size_t size) override {
            to.write(data, size);
            at += size;
            end = std::max(end, at);
        }
        bool seekable() const override { return to.seekable(); }
        void seek(uint64_t offset) override {
            to.seek(offset);
            at = offset;
        }
        bool restart() override {
            at = end = 0;
            return to.restart();
        }
    } counted(output);
    ConversionResult result = whole(input, counted, options, limits, part_of(progress, 0, 0.5), picture);
    split(input, options, limits, part_of(progress, 0.5, 1), *parts, result, counted.end, picture);
    return with_cover_problem(std::move(result));
}

}  // namespace mp3c::converter
