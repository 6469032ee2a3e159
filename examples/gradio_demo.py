"""The first article's Gradio demo, line by line in glassformer (public API only).

One line differs in meaning, not only in its import: the article returns ``pipe(text)``, a list like
``[{"label": "POSITIVE", "score": 0.98}]``, to a ``"label"`` output, but Gradio's Label takes a string or
a ``{label: confidence}`` dict and refuses a list (``ValueError: The `Label` output interface expects
one of ...``). ``classify`` here returns every label's probability as that dict.

    python examples/finetune_sentiment.py     # writes ./bert-finetuned
    python examples/gradio_demo.py            # serves the demo on http://127.0.0.1:7860
"""

import gradio as gr

# from transformers import pipeline
from glassformer import pipeline

pipe = pipeline("text-classification", model="./bert-finetuned")


def classify(text):
    return {result["label"]: result["score"] for result in pipe(text, top_k=None)}  # return pipe(text)


demo = gr.Interface(fn=classify, inputs="text", outputs="label")

if __name__ == "__main__":
    demo.launch()                                                       # demo.launch(share=True)
