import imageThumbnailDescribe from "../../examples/flows/image-thumbnail-describe.yaml";
import pythonTextStats from "../../examples/flows/python-text-stats.yaml";
import textTtsAnalysis from "../../examples/flows/text-tts-analysis.yaml";
import videoClipDescribe from "../../examples/flows/video-clip-describe.yaml";

/** The flows of examples/flows, by file name, offered in the flow picker. */
export const exampleFlows: ReadonlyArray<{ readonly file: string; readonly text: string }> = [
  { file: "image-thumbnail-describe.yaml", text: imageThumbnailDescribe },
  { file: "python-text-stats.yaml", text: pythonTextStats },
  { file: "text-tts-analysis.yaml", text: textTtsAnalysis },
  { file: "video-clip-describe.yaml", text: videoClipDescribe },
];
