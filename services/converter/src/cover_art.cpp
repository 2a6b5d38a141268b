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

Frame decode(const AVStream& stream, std::string& why) {
    const AVCodec* codec = avcodec_find_decoder(stream.codecpar->codec_id);
    Codec context(codec ? avcodec_alloc_context3(codec) : nullptr);
    if (!context) return why = "no decoder for the picture", nullptr;
    if (avcodec_parameters_to_context(context.get(), stream.codecpar) < 0) return why = "picture parameters", nullptr;
    AVDictionary* settings = nullptr;
    av_dict_set_int(&settings, "max_pixels", kMaxCoverPixels, 0);
    av_dict_set(&settings, "threads", "1", 0);
    int rc = avcodec_open2(context.get(), codec, &settings);
    av_dict_free(&settings);
    if (rc < 0) return why = "cannot open the picture's decoder", nullptr;
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

}  // namespace

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
