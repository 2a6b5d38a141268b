"""The seam check of parallel encoding (issue 20), used by bench/converter.

Decodes the source and two MP3s of it (one encoder, and segments encoded in parallel) to 32-bit float PCM with the
ffmpeg command line, which honours the LAME header's delay and padding, so all three line up to the sample. Then,
window by window (100 ms), the signal-to-error ratio of each MP3 against the source. A join with a click, a gap or a
repeated frame shows as a window far worse than the same window of the single encode; a lost or added frame as a
different length.

Usage: python3 seam_check.py SOURCE ONE.mp3 PARALLEL.mp3 -> prints one line; exit status 1 when it fails.
"""
import array, math, statistics, subprocess, sys

ALLOWED_DB = 3.0  # no window of the parallel encode may be this much worse than the single encode's same window


def pcm(path, rate):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
                         check=True, capture_output=True).stdout
    samples = array.array("f")
    samples.frombytes(raw)
    return samples


def window_snr(reference, decoded, window):
    out = []
    for start in range(0, min(len(reference), len(decoded)) - window + 1, window):
        ref = reference[start:start + window]
        dec = decoded[start:start + window]
        signal = sum(x * x for x in ref)
        error = sum((x - y) * (x - y) for x, y in zip(ref, dec))
        out.append(10 * math.log10((signal + 1e-12) / (error + 1e-12)))
    return out


def main():
    source, one, parallel = sys.argv[1:4]
    rate = 44100
    ref, a, b = pcm(source, rate), pcm(one, rate), pcm(parallel, rate)
    window = rate // 10
    snr_a, snr_b = window_snr(ref, a, window), window_snr(ref, b, window)
    worse = [y - x for x, y in zip(snr_a, snr_b)]
    worst_at = min(range(len(worse)), key=worse.__getitem__)
    same_length = len(a) == len(b)
    ok = same_length and worse[worst_at] >= -ALLOWED_DB
    print(f"seam check: {len(worse)} windows of 100 ms; SNR against the source, median: one encoder "
          f"{statistics.median(snr_a):.1f} dB, parallel {statistics.median(snr_b):.1f} dB; worst window: one encoder "
          f"{min(snr_a):.1f} dB, parallel {min(snr_b):.1f} dB; parallel against one encoder, window by window: worst "
          f"{worse[worst_at]:+.2f} dB at {worst_at / 10:.1f} s (allowed -{ALLOWED_DB:g}); decoded length "
          f"{len(b)} samples, one encoder {len(a)} ({'equal' if same_length else 'DIFFERENT'}): "
          f"{'passed' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
