// Which way a stream plays in this browser (issue 20): natively, from the camera's sub
// stream, or converted to H.264 by the server (`transcode=h264`), and why. The only
// module that asks the browser what it decodes.
//
// The question is asked with the stream's exact codec string, as the API reports it
// (`nvrCodec` on each stream of `/api/`, and on each of `videoSampleEntries`):
// `MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"')` decides where
// Media Source Extensions exist (live view needs them, and a browser that plays a type
// through them plays it in a <video> too); `VideoDecoder.isConfigSupported` (WebCodecs)
// is asked beside it, where available, and its answer is shown in the reason; without
// Media Source Extensions it decides (asked ahead with `warm`: it answers
// asynchronously), else `canPlayType`. An unknown codec (no recording yet) is tried
// natively: the live player falls back to converting if the first frame's type is
// refused.

const STORE = "nvr.playback";
const webcodecs = new Map(); // codec -> true/false (null while asked)

/** The user's choice: may a stream the browser cannot play be replaced by the camera's
 * sub stream (when that plays natively) rather than converted? Default: yes. */
export function allowSub() {
  try {
    return JSON.parse(localStorage.getItem(STORE) || "{}").allowSub !== false;
  } catch (_) {
    return true;
  }
}

export function setAllowSub(value) {
  localStorage.setItem(STORE, JSON.stringify({ allowSub: !!value }));
}

/** "H.265", "H.264" or the codec string itself. */
export function codecName(codec) {
  if (/^(hvc1|hev1)\./.test(codec || "")) return "H.265";
  if (/^(avc1|avc3)\./.test(codec || "")) return "H.264";
  return codec || "an unknown codec";
}

/** Asks WebCodecs about `codec` ahead of time (its answer comes asynchronously). */
export function warm(codec) {
  if (!codec || webcodecs.has(codec) || !window.VideoDecoder?.isConfigSupported) return;
  webcodecs.set(codec, null);
  window.VideoDecoder.isConfigSupported({ codec }).then(
    (r) => webcodecs.set(codec, !!r.supported),
    () => webcodecs.set(codec, false),
  );
}

/** Whether this browser plays `codec` natively: `{ ok, by }` (`by`: which API said so). */
export function canPlay(codec) {
  if (!codec) return { ok: true, by: "nothing recorded yet" };
  warm(codec);
  const type = `video/mp4; codecs="${codec}"`;
  const MS = window.ManagedMediaSource || window.MediaSource;
  const wc = webcodecs.get(codec);
  const also = wc == null ? "" : `; VideoDecoder: ${wc ? "yes" : "no"}`;
  if (MS) return { ok: MS.isTypeSupported(type), by: `MediaSource.isTypeSupported${also}` };
  if (wc != null) return { ok: wc, by: "VideoDecoder.isConfigSupported" };
  return { ok: document.createElement("video").canPlayType(type) !== "", by: "canPlayType" };
}

/**
 * How to play `stream` of camera `cam` (a camera of `/api/`): `{ stream, transcode, path,
 * label, why }`; `path` is "native", "sub" or "converted". `subAllowed`: the user's
 * choice (`allowSub`); `forceConvert`: the native attempt failed.
 */
export function choose(cam, stream, { subAllowed = allowSub(), forceConvert = false } = {}) {
  const codec = cam.streams[stream]?.nvrCodec;
  const here = canPlay(codec);
  if (here.ok && !forceConvert) {
    const why = codec ? `this browser plays ${codecName(codec)} (${codec}; ${here.by})` : here.by;
    return { stream, transcode: false, path: "native", label: "native", why };
  }
  const cannot = forceConvert && here.ok
    ? "this browser refused the stream's video"
    : `this browser cannot play ${codecName(codec)} (${codec}; ${here.by})`;
  const sub = stream !== "sub" && cam.streams.sub;
  if (sub && subAllowed && sub.nvrCodec && canPlay(sub.nvrCodec).ok && !forceConvert) {
    return {
      stream: "sub",
      transcode: false,
      path: "sub",
      label: "sub stream",
      why: `${cannot}; the camera's sub stream is ${codecName(sub.nvrCodec)}, which it plays`,
    };
  }
  return {
    stream,
    transcode: true,
    path: "converted",
    label: "converted",
    why: `${cannot}; the server converts it to H.264${sub && !subAllowed ? " (sub stream not allowed)" : ""}`,
  };
}

/** The label of a converted picture once its height is known: "converted 720p". */
export function convertedLabel(height) {
  return height ? `converted ${height}p` : "converted";
}
