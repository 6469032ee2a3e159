"""The first article's BertViz cell, in glassformer: the same ``head_view(attentions, tokens=...)`` call.

glassformer's head_view returns the page (a notebook renders it) and writes it to a file when given
``out=``. The encoder is MiniLM from glassformer's cache (bert-base-uncased needs a download).

    python examples/bertviz_head_view.py      # writes head_view.html
"""

# from transformers import BertModel, BertTokenizer; from bertviz import head_view
from glassformer import from_pretrained
from glassformer.viz import head_view

loaded = from_pretrained("minilm")                                      # model = BertModel.from_pretrained(..., output_attentions=True)
model, tokenizer = loaded.model, loaded.tokenizer                       # tokenizer = BertTokenizer.from_pretrained(...)

text = "The dog chased the cat because it was fast."
inputs = tokenizer(text, return_tensors="pt")
outputs = model(**inputs, output_attentions=True)

# Launch attention head visualization
tokens = [tokenizer.id_to_token(i) for i in inputs["input_ids"][0].tolist()]  # tokenizer.convert_ids_to_tokens(...)
head_view(outputs.attentions, tokens=tokens, out="head_view.html")
