#include "cover_art.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <memory>

#include "ffmpeg_io.hpp"
#include "input_format.hpp"

namespace mp3c::converter {

namespace {

struct SwsFree {
    void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using Codec = std::unique_ptr<AVCodecContext, detail::CodecContextFree>;
using Frame = detail::FramePtr;
using Packet = detail::PacketPtr;

// The image formats a cover may come in (and the only image decoders run on one).
bool is_picture_codec(AVCodecID id) {
    return id == AV_CODEC_ID_MJPEG || id == AV_CODEC_ID_PNG || id == AV_CODEC_ID_BMP || id == AV_CODEC_ID_GIF ||
           id == AV_CODEC_ID_WEBP || id == AV_CODEC_ID_TIFF;
}

// JPEG (FF D8 FF) and PNG (89 50 4E 47) by their first bytes, as a player will take them.
bool starts_as_jpeg(const AVPacket& p) {
    return p.size > 3 && p.data[0] == 0xFF && p.data[1] == 0xD8 && p.data[2] == 0xFF;
}
bool starts_as_png(const AVPacket& p) {
    return p.size > 8 && p.data[0] == 0x89 && p.data[1] == 'P' && p.data[2] == 'N' && p.data[3] == 'G';
}

// A decoder for the stream, bounded as every cover decoder is: one thread, at most kMaxCoverPixels a frame. nullptr
// with the reason (`what` names the stream: "picture", "video").
Codec open_bounded_decoder(const AVStream& stream, const std::string& what, std::string& why) {
    const AVCodec* codec = avcodec_find_decoder(stream.codecpar->codec_id);
    Codec context(codec ? avcodec_alloc_context3(codec) : nullptr);
    if (!context || avcodec_parameters_to_context(context.get(), stream.codecpar) < 0) {
        return why = "no decoder for the " + what, nullptr;
    }
    context->pkt_timebase = stream.time_base;
    AVDictionary* settings = nullptr;
    av_dict_set_int(&settings, "max_pixels", kMaxCoverPixels, 0);
    av_dict_set(&settings, "threads", "1", 0);
    int rc = avcodec_open2(context.get(), codec, &settings);
    av_dict_free(&settings);
    if (rc < 0) return why = "cannot open the " + what + "'s decoder", nullptr;
    return context;
}

Frame decode(const AVStream& stream, std::string& why) {
    Codec context = open_bounded_decoder(stream, "picture", why);
    if (!context) return nullptr;
    Frame frame(av_frame_alloc());
    bool decoded = frame && avcodec_send_packet(context.get(), &stream.attached_pic) >= 0;
    if (decoded) {
        avcodec_send_packet(context.get(), nullptr);  // the end: the one picture comes out
        decoded = avcodec_receive_frame(context.get(), frame.get()) >= 0;
    }
    if (!decoded) {
        return why = "the picture cannot be decoded (damaged, or larger than " +
                     std::to_string(kMaxCoverPixels / 1'000'000) + " megapixels)",
               nullptr;
    }
    if (frame->width <= 0 || frame->height <= 0 || int64_t{frame->width} * frame->height > kMaxCoverPixels) {
        return why = "the picture has no usable size", nullptr;
    }
    return frame;
}

std::optional<CoverImage> as_jpeg(const AVFrame& picture, std::string& why) {
    double scale = std::min(1.0, static_cast<double>(kMaxCoverSide) / std::max(picture.width, picture.height));
    int width = std::max(1, static_cast<int>(std::lround(picture.width * scale)));
    int height = std::max(1, static_cast<int>(std::lround(picture.height * scale)));
    std::unique_ptr<SwsContext, SwsFree> scaler(
        sws_getContext(picture.width, picture.height, static_cast<AVPixelFormat>(picture.format), width, height,
                       AV_PIX_FMT_YUVJ420P, SWS_BICUBIC, nullptr, nullptr, nullptr));
    Frame scaled(av_frame_alloc());
    if (!scaler || !scaled) return why = "cannot scale the picture", std::nullopt;
    scaled->width = width;
    scaled->height = height;
    scaled->format = AV_PIX_FMT_YUVJ420P;
    if (av_frame_get_buffer(scaled.get(), 0) < 0) return why = "out of memory", std::nullopt;
    sws_scale(scaler.get(), picture.data, picture.linesize, 0, picture.height, scaled->data, scaled->linesize);

    const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    Codec encoder(codec ? avcodec_alloc_context3(codec) : nullptr);
    if (!encoder) return why = "no JPEG encoder", std::nullopt;
    encoder->width = width;
    encoder->height = height;
    encoder->pix_fmt = AV_PIX_FMT_YUVJ420P;
    encoder->time_base = AVRational{1, 1};
    encoder->flags |= AV_CODEC_FLAG_QSCALE;
    encoder->global_quality = 3 * FF_QP2LAMBDA;  // a good JPEG quality: a 600x600 cover of 50 to 150 kB
    scaled->quality = encoder->global_quality;
    Packet packet(av_packet_alloc());
    if (!packet || avcodec_open2(encoder.get(), codec, nullptr) < 0 ||
        avcodec_send_frame(encoder.get(), scaled.get()) < 0 ||
        avcodec_receive_packet(encoder.get(), packet.get()) < 0) {
        return why = "cannot encode the picture as JPEG", std::nullopt;
    }
    CoverImage cover;
    cover.width = width;
    cover.height = height;
    cover.data.assign(packet->data, packet->data + packet->size);
    return cover;
}

// The video decoders a cover frame may come from: what cameras, phones, screen recorders and the web produce. A video
// in anything else gets no cover rather than a run of a rarely used decoder on untrusted bytes.
const std::string& cover_decoder_names() {
    static const std::string names =
        "h264,hevc,vp8,vp9,av1,libdav1d,mpeg4,mpeg2video,mpeg1video,mjpeg,h263,theora,vc1,wmv3,msmpeg4v3,flv,png,bmp,"
        "gif,webp,tiff";
    return names;
}

bool is_cover_video_decoder(const AVCodec* codec) {
    if (codec == nullptr) return false;
    std::string name = "," + cover_decoder_names() + ",";
    return name.find("," + std::string(codec->name) + ",") != std::string::npos;
}

int refuse_nested_open(AVFormatContext*, AVIOContext** pb, const char*, int, AVDictionary**) {
    *pb = nullptr;
    return AVERROR(EPERM);
}

// Black (or nearly): 98 % of its pixels darker than a tenth of full scale, as FFmpeg's blackdetect judges, on a
// 64x64 grey copy.
bool is_black(const AVFrame& frame) {
    constexpr int kSide = 64;
    std::unique_ptr<SwsContext, SwsFree> scaler(sws_getContext(frame.width, frame.height,
                                                               static_cast<AVPixelFormat>(frame.format), kSide, kSide,
                                                               AV_PIX_FMT_GRAY8, SWS_AREA, nullptr, nullptr, nullptr));
    if (!scaler) return false;
    uint8_t grey[kSide * kSide];
    uint8_t* planes[4] = {grey, nullptr, nullptr, nullptr};
    int strides[4] = {kSide, 0, 0, 0};
    sws_scale(scaler.get(), frame.data, frame.linesize, 0, frame.height, planes, strides);
    int dark = 0;
    for (uint8_t v : grey) dark += v < 32 ? 1 : 0;  // limited-range black is 16; 10 % of 219 above it is ~38
    return dark >= kSide * kSide * 98 / 100;
}

// A frame of the video stream near `target` seconds that is not black: from the key frame at or before it, the first
// frame that is not black. Decoding on to the target itself cost up to a key-frame interval of frames (250 of 720p
// H.264 by default, 0.4 s: a tenth of a one-thread conversion of 10 minutes) for a picture no better. nullptr when
// there is none within the frame budget (said in `why`).
Frame video_frame(AVFormatContext& format, int index, double target, detail::Watchdog& watchdog, std::string& why) {
    AVStream& stream = *format.streams[index];
    Codec decoder = open_bounded_decoder(stream, "video", why);
    if (!decoder) return nullptr;
    int rc = 0;
    // To the key frame before the target, where the container can; else from the start.
    if (target > 0) {
        auto ts = static_cast<int64_t>(target / av_q2d(stream.time_base));
        if (av_seek_frame(&format, index, ts, AVSEEK_FLAG_BACKWARD) < 0) {
            av_seek_frame(&format, index, 0, AVSEEK_FLAG_BACKWARD | AVSEEK_FLAG_BYTE);
        }
    }
    Packet packet(av_packet_alloc());
    Frame frame(av_frame_alloc());
    if (!packet || !frame) return why = "out of memory", nullptr;
    int decoded = 0;
    bool ended = false;
    while (decoded < kMaxCoverFrames && !watchdog.expired()) {
        if (!ended) {
            rc = av_read_frame(&format, packet.get());
            if (rc < 0) {
                ended = true;
                avcodec_send_packet(decoder.get(), nullptr);  // drain what the decoder holds
            } else {
                if (packet->stream_index == index) avcodec_send_packet(decoder.get(), packet.get());
                av_packet_unref(packet.get());
            }
        }
        for (;;) {
            rc = avcodec_receive_frame(decoder.get(), frame.get());
            if (rc < 0) break;
            ++decoded;
            bool usable =
                frame->width > 0 && frame->height > 0 && int64_t{frame->width} * frame->height <= kMaxCoverPixels;
            if (usable && !is_black(*frame)) return frame;
            av_frame_unref(frame.get());
        }
        if (ended && rc == AVERROR_EOF) break;
        if (ended && rc == AVERROR(EAGAIN)) break;
    }
    if (watchdog.expired()) return why = "the video decodes too slowly for a cover", nullptr;
    return why = "no frame of the video that is not black", nullptr;
}

}  // namespace

std::optional<CoverImage> find_cover(MediaInput& input, const Limits& limits, std::string& why) {
    why.clear();
    Limits budget = limits;
    budget.timeout_floor = kCoverTimeBudget;
    budget.timeout_ratio = 0;
    detail::Watchdog watchdog(budget);
    struct Rewind {  // the conversion reads the input from its start afterwards
        MediaInput& input;
        ~Rewind() {
            try {
                input.seek(0);
            } catch (...) {  // the conversion meets the same failure and reports it
            }
        }
    } rewind{input};
    const AVInputFormat* allowed = nullptr;
    try {
        allowed = probe_allowed_format(input);
    } catch (const ConversionError&) {
        return std::nullopt;  // not media the conversion takes: it says why
    }
    detail::InputBridge bridge{.input = &input, .watchdog = &watchdog};
    auto io = detail::make_io(&bridge, false, &detail::InputBridge::read, nullptr, &detail::InputBridge::seek);
    AVFormatContext* raw = avformat_alloc_context();
    if (raw == nullptr || !io) return why = "out of memory", std::nullopt;
    raw->pb = io.get();
    raw->flags |= AVFMT_FLAG_CUSTOM_IO;
    raw->io_open = &refuse_nested_open;
    raw->interrupt_callback = {&detail::Watchdog::interrupt, &watchdog};
    raw->max_streams = limits.max_streams + 1;
    AVDictionary* settings = nullptr;
    av_dict_set(&settings, "format_whitelist", allowed_demuxer_names().c_str(), 0);
    av_dict_set(&settings, "protocol_whitelist", "", 0);
    av_dict_set(&settings, "codec_whitelist", cover_decoder_names().c_str(), 0);
    av_dict_set(&settings, "enable_drefs", "0", 0);
    int rc = avformat_open_input(&raw, "", allowed, &settings);
    av_dict_free(&settings);
    if (rc < 0) return std::nullopt;  // the conversion opens it again and says why it cannot
    std::unique_ptr<AVFormatContext, detail::InputContextFree> format(raw);
    // Streams that only appear while reading (MPEG-TS) are looked for; the others are known from the header.
    if ((format->ctx_flags & AVFMTCTX_NOHEADER) != 0 && avformat_find_stream_info(format.get(), nullptr) < 0) {
        return std::nullopt;
    }
    if (auto picture = source_cover(format->streams, format->nb_streams, why)) return picture;
    if (!why.empty()) return std::nullopt;  // a damaged picture: no frame instead of the cover the source chose
    int index = -1;
    for (unsigned i = 0; i < format->nb_streams; ++i) {
        const AVStream* s = format->streams[i];
        if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && (s->disposition & AV_DISPOSITION_ATTACHED_PIC) == 0 &&
            index < 0) {
            index = static_cast<int>(i);
        }
    }
    if (index < 0) return std::nullopt;  // audio alone: no cover
    if (!is_cover_video_decoder(avcodec_find_decoder(format->streams[index]->codecpar->codec_id))) {
        why = "the video's format is not one a cover is taken from";
        return std::nullopt;
    }
    const AVCodecParameters& shape = *format->streams[index]->codecpar;
    if (int64_t{shape.width} * shape.height > kMaxCoverPixels) {
        why = "the video's frames are larger than " + std::to_string(kMaxCoverPixels / 1'000'000) +
              " megapixels: no cover is taken from them";
        return std::nullopt;
    }
    for (unsigned i = 0; i < format->nb_streams; ++i) {
        if (static_cast<int>(i) != index) format->streams[i]->discard = AVDISCARD_ALL;
    }
    const AVStream* video = format->streams[index];
    double length = 0;
    if (video->duration != AV_NOPTS_VALUE && video->duration > 0) {
        length = static_cast<double>(video->duration) * av_q2d(video->time_base);
    } else if (format->duration != AV_NOPTS_VALUE && format->duration > 0) {
        length = static_cast<double>(format->duration) / AV_TIME_BASE;
    }
    double start =
        video->start_time != AV_NOPTS_VALUE ? static_cast<double>(video->start_time) * av_q2d(video->time_base) : 0;
    if (!std::isfinite(length) || length < 0 || length > 1e7) length = 0;
    Frame frame = video_frame(*format, index, start + length / 10, watchdog, why);
    if (!frame) return std::nullopt;
    return as_jpeg(*frame, why);
}

std::optional<CoverImage> source_cover(const AVStream* const* streams, unsigned count, std::string& why) {
    const AVStream* found = nullptr;
    for (unsigned i = 0; i < count && !found; ++i) {
        const AVStream* s = streams[i];
        if ((s->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0 && s->attached_pic.size > 0 &&
            is_picture_codec(s->codecpar->codec_id)) {
            found = s;
        }
    }
    if (!found) return std::nullopt;
    const AVPacket& pic = found->attached_pic;
    const AVCodecParameters& p = *found->codecpar;
    // A JPEG or PNG of at most kMaxCoverSide on each side goes in with its own bytes.
    auto as_it_is = [&](int width, int height) -> std::optional<CoverImage> {
        bool fits = width > 0 && height > 0 && width <= kMaxCoverSide && height <= kMaxCoverSide;
        bool png = p.codec_id == AV_CODEC_ID_PNG && starts_as_png(pic);
        if (!fits || !(png || (p.codec_id == AV_CODEC_ID_MJPEG && starts_as_jpeg(pic)))) return std::nullopt;
        CoverImage cover;
        cover.png = png;
        cover.width = width;
        cover.height = height;
        cover.data.assign(pic.data, pic.data + pic.size);
        return cover;
    };
    if (auto cover = as_it_is(p.width, p.height)) return cover;  // its size known without decoding
    // Decoded, also when only its size is unknown (the demuxer does not always say it).
    Frame picture = decode(*found, why);
    if (!picture) return std::nullopt;
    if (auto cover = as_it_is(picture->width, picture->height)) return cover;
    return as_jpeg(*picture, why);
}

}  // namespace mp3c::converter
