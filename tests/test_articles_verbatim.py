"""Every code block of the two source articles, run against glassformer with only its imports rewritten.

Each block below is the article's code as printed (/work/shared/articles; the second article lost its
indentation when it was saved, and it is restored here by the code's structure). :func:`rewrite` changes a
block mechanically: every top-level ``def``/``class`` whose name glassformer provides (in
``glassformer.numpy_ref`` for the second article, ``glassformer.torch_ref`` for the first) is replaced by
an import of glassformer's, and the third-party imports the article uses for pipelines and BertViz are
pointed at glassformer. Everything else runs as written.

The printed output is compared with the numbers the articles print. Where an article draws random
weights (``np.random.rand``), its numbers cannot repeat; the test then checks what holds for any draw
(shapes, LayerNorm's mean 0 and variance 1), or feeds the article's printed inputs and checks its printed
outputs. Where the article's code is right, its own definition (run as printed) is the reference for ours.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import math
import re
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

NUMPY_REF = "glassformer.numpy_ref"
TORCH_REF = "glassformer.torch_ref"
# The article's third-party imports whose names glassformer answers: (module, name) → glassformer module.
REDIRECTS = {("transformers", "pipeline"): "glassformer", ("bertviz", "head_view"): "glassformer.viz"}


def rewrite(code: str, module: str) -> str:
    """`code` with the definitions `module` provides replaced by one import of them, and imports redirected."""
    tree = ast.parse(code)
    provided = set(importlib.import_module(module).__all__)
    replaced, body = [], []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in provided:
            replaced.append(node.name)
            continue
        if isinstance(node, ast.ImportFrom):
            kept = [a for a in node.names if (node.module, a.name) not in REDIRECTS]
            for alias in node.names:
                if (node.module, alias.name) in REDIRECTS:
                    body.append(ast.ImportFrom(REDIRECTS[node.module, alias.name], [alias], 0))
            if not kept:
                continue
            node.names = kept
        body.append(node)
    if replaced:
        body.insert(0, ast.ImportFrom(module, [ast.alias(name) for name in dict.fromkeys(replaced)], 0))
    return ast.unparse(ast.fix_missing_locations(ast.Module(body, [])))


def run(code: str, module: str, namespace: dict | None = None) -> tuple[str, dict]:
    """Run the rewritten block; its printed output and its variables."""
    namespace = {} if namespace is None else namespace
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(rewrite(code, module), "<article block>", "exec"), namespace)
    return printed.getvalue(), namespace


def numbers(text: str) -> list[float]:
    """The numbers in printed text, in order."""
    return [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?", text)]


# ----------------------------------------------------------------------------- second article (NumPy)

SOFTMAX = """
import numpy as np
def softmax(x):
    e_x = np.exp(x)
    return e_x / np.sum(e_x)
# Example input vector
input_vector = np.array([1.0, 2.0, 3.0])
# Compute softmax
softmax_output = softmax(input_vector)
print("Input Vector:", input_vector)
print("Softmax Output:", softmax_output)
"""

TOKENIZE = """
import re
def simple_tokenize(text):
    # Define a regular expression pattern for tokenization
    pattern = re.compile(r'(\\b\\w+\\b|[.,!?;])')
    # Use findall to get all matches
    tokens = pattern.findall(text)
    return tokens
# Example text
text = "Hello, how are you doing today?"
# Tokenize the text
tokens = simple_tokenize(text)
print("Original Text:", text)
print("Tokens:", tokens)
"""

ONE_HOT_ENCODE = """
def one_hot_encode(word, vocab):
    # Create a dictionary to store one-hot encoded vectors
    one_hot_vec = {}
    for idx, w in enumerate(vocab):
        one_hot_vec[w] = [1 if idx == i else 0 for i in range(len(vocab))]
    # Return the one-hot encoded vector for the given word
    return one_hot_vec.get(word, [0] * len(vocab))
# Example vocabulary
vocab = ["apple", "banana", "orange", "grape"]
# Example words to encode
words_to_encode = ["apple", "orange", "kiwi"]
# One-hot encode each word
for word in words_to_encode:
    one_hot_vector = one_hot_encode(word, vocab)
    print(f"One-hot vector for '{word}': {one_hot_vector}")
"""

BPE = '''
import re
from collections import defaultdict
def get_stats(vocab):
    """
    Given a vocabulary (dictionary mapping words to frequency counts), returns a dictionary of tuples \
representing the frequency count of pairs of characters
    in the vocabulary.
    """
    pairs = defaultdict(int)
    for word, freq in vocab.items():
        symbols = word.split()
        for i in range(len(symbols)-1):
            pairs[symbols[i],symbols[i+1]] += freq
    return pairs
def merge_vocab(pair, v_in):
    """
    Given a pair of characters and a vocabulary, returns a new vocabulary with the pair of characters merged together wherever they appear.
    """
    v_out = {}
    bigram = re.escape(' '.join(pair))
    p = re.compile(r'(?<!\\S)' + bigram + r'(?!\\S)')
    for word in v_in:
        w_out = p.sub(''.join(pair), word)
        v_out[w_out] = v_in[word]
    return v_out
def get_vocab(data):
    """
    Given a list of strings, returns a dictionary of words mapping to their frequency count in the data.
    """
    vocab = defaultdict(int)
    for line in data:
        for word in line.split():
            vocab[' '.join(list(word)) + ' </w>'] += 1
    return vocab
def byte_pair_encoding(data, n):
    """
    Given a list of strings and an integer n, returns a list of n merged pairs
    of characters found in the vocabulary of the input data.
    """
    vocab = get_vocab(data)
    for i in range(n):
        pairs = get_stats(vocab)
        best = max(pairs, key=pairs.get)
        print("-----")
        print('most frequent pair:', best)
        print('vocab before merge:',*vocab.items())
        vocab = merge_vocab(best, vocab)
        print('vocab after merge:', *vocab.items())
    return vocab
# Example usage:
corpus = "low,lowest,newer,wider"
data = corpus.split(',')
num_merges = 5 # set the number of merging steps
bpe_pairs = byte_pair_encoding(data, num_merges)
for k,v in bpe_pairs.items():
    print(k,v)
'''

# The article's printed run ("-- Final vocab:" is the article's own heading, not printed by its code).
BPE_PRINTED = """-----
most frequent pair: ('l', 'o')
vocab before merge: ('l o w </w>', 1) ('l o w e s t </w>', 1) ('n e w e r </w>', 1) ('w i d e r </w>', 1)
vocab after merge: ('lo w </w>', 1) ('lo w e s t </w>', 1) ('n e w e r </w>', 1) ('w i d e r </w>', 1)
-----
most frequent pair: ('lo', 'w')
vocab before merge: ('lo w </w>', 1) ('lo w e s t </w>', 1) ('n e w e r </w>', 1) ('w i d e r </w>', 1)
vocab after merge: ('low </w>', 1) ('low e s t </w>', 1) ('n e w e r </w>', 1) ('w i d e r </w>', 1)
-----
most frequent pair: ('e', 'r')
vocab before merge: ('low </w>', 1) ('low e s t </w>', 1) ('n e w e r </w>', 1) ('w i d e r </w>', 1)
vocab after merge: ('low </w>', 1) ('low e s t </w>', 1) ('n e w er </w>', 1) ('w i d er </w>', 1)
-----
most frequent pair: ('er', '</w>')
vocab before merge: ('low </w>', 1) ('low e s t </w>', 1) ('n e w er </w>', 1) ('w i d er </w>', 1)
vocab after merge: ('low </w>', 1) ('low e s t </w>', 1) ('n e w er</w>', 1) ('w i d er</w>', 1)
-----
most frequent pair: ('low', '</w>')
vocab before merge: ('low </w>', 1) ('low e s t </w>', 1) ('n e w er</w>', 1) ('w i d er</w>', 1)
vocab after merge: ('low</w>', 1) ('low e s t </w>', 1) ('n e w er</w>', 1) ('w i d er</w>', 1)
low</w> 1
low e s t </w> 1
n e w er</w> 1
w i d er</w> 1
"""

ATTENTION_EXAMPLE = """
import numpy as np
d_k = 3 # Dimension of queries and keys
d_v = 3 # Dimension of values
# Example word representations (for simplicity, these are random)
queries = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]]) # 3 words, d_k dimensions
keys = np.array([[1, 1, 1], [0, 1, 0], [1, 0, 1]]) # 3 words, d_k dimensions
values = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) # 3 words, d_v dimensions
# Calculating the dot product between queries and keys (transpose keys)
dot_products = np.dot(queries, keys.T)
print("Dot Products:\\n", dot_products)
# Applying softmax to get attention weights
def softmax(x):
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)
attention_weights = softmax(dot_products)
print("Attention Weights:\\n", attention_weights)
# Multiplying the attention weights with the values
weighted_values = np.dot(attention_weights, values)
print("Output:\\n", weighted_values)
"""

POSITIONAL_LOOP = """
import numpy as np
import matplotlib.pyplot as plt
scaling_factor = 10000
def positional_encoding(max_len, d_model):
    pos_enc = np.zeros((max_len, d_model))
    for pos in range(max_len):
        for i in range(0, d_model, 2):
            pos_enc[pos, i] = np.sin(pos / (scaling_factor ** ((2 * i)/d_model)))
            pos_enc[pos, i + 1] = np.cos(pos / (scaling_factor ** ((2 * i)/d_model)))
    return pos_enc
# Example usage
max_len = 10 # Maximum length of the sequence
d_model = 6 # Dimension of the model
pos_encoding = positional_encoding(max_len, d_model)
print("Positional Encoding Matrix:\\n", pos_encoding)
# Visualize the positional encoding
plt.figure(figsize=(10, 6))
plt.pcolormesh(pos_encoding, cmap='viridis')
plt.xlabel('Depth')
plt.xlim((0, d_model))
plt.ylabel('Position')
plt.colorbar()
plt.title('Positional Encoding')
plt.show()
"""

EMBEDDING = """
import numpy as np
class EmbeddingLayer:
    def __init__(self, vocab_size, d_model):
        self.embedding_matrix = np.random.rand(vocab_size, d_model)
    def __call__(self, x):
        return self.embedding_matrix[x]
# Defining the vocabulary and input sentence
vocab = {"I": 0, "love": 1, "learning": 2, "from": 3, "examples": 4}
input_sentence = ["I", "love", "learning"]
# Converting the input sentence to indices
input_indices = [vocab[word] for word in input_sentence]
# Initializing the embedding layer
vocab_size = len(vocab)
d_model = 4 # Let's use 4 dimensions for simplicity
embedding_layer = EmbeddingLayer(vocab_size, d_model)
# Getting the embeddings for the input indices
embeddings = embedding_layer(np.array(input_indices))
print("Input Indices:", input_indices)
print("Embeddings:\\n", embeddings)
"""

POSITIONAL_CLASS = """
class PositionalEncoding:
    def __init__(self, d_model, max_len=5000):
        self.encoding = np.zeros((max_len, d_model))
        position = np.arange(0, max_len)[:, np.newaxis]
        div_term = np.exp(np.arange(0, d_model, 2) * -(np.log(10000.0) / d_model))
        self.encoding[:, 0::2] = np.sin(position * div_term)
        self.encoding[:, 1::2] = np.cos(position * div_term)
    def __call__(self, x):
        seq_len = x.shape[1]
        return x + self.encoding[:seq_len, :]
pos_encoding_layer = PositionalEncoding(d_model)
embeddings_with_positional_encoding = pos_encoding_layer(embeddings[np.newaxis, :])
print("Embeddings with Positional Encoding:\\n", embeddings_with_positional_encoding)
"""

# The article's printed draw and the output it printed for it.
PRINTED_EMBEDDINGS = [[0.90034368, 0.82241612, 0.02018069, 0.62033932],
                      [0.6351551, 0.33107626, 0.78112305, 0.21081683],
                      [0.93584476, 0.08042298, 0.05619254, 0.74456291]]
PRINTED_WITH_POSITIONS = [[0.90034368, 1.82241612, 0.02018069, 1.62033932],
                          [1.47662609, 0.87137857, 0.79112288, 1.21076683],
                          [1.84514219, -0.33572386, 0.07619121, 1.74436292]]

SELF_ATTENTION_CLASS = """
class SelfAttention:
    def __init__(self, d_model):
        self.d_model = d_model
        self.W_q = np.random.rand(d_model, d_model)
        self.W_k = np.random.rand(d_model, d_model)
        self.W_v = np.random.rand(d_model, d_model)
        self.W_o = np.random.rand(d_model, d_model)
    def __call__(self, x):
        Q = np.dot(x, self.W_q)
        K = np.dot(x, self.W_k)
        V = np.dot(x, self.W_v)
        scores = np.dot(Q, K.T) / np.sqrt(self.d_model)
        attention_weights = np.exp(scores) / np.sum(np.exp(scores), axis=-1, keepdims=True)
        attention_output = np.dot(attention_weights, V)
        return np.dot(attention_output, self.W_o)
"""

SELF_ATTENTION = SELF_ATTENTION_CLASS + """
# A simple input matrix (3 words with 4-dimensional embeddings)
input_matrix = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 1, 1]])
d_model = 4 # Dimensionality of the input
self_attention_layer = SelfAttention(d_model)
output_matrix = self_attention_layer(input_matrix)
print("Input Matrix:\\n", input_matrix)
print("Output Matrix after Self-Attention:\\n", output_matrix)
"""

FEED_FORWARD_CLASS = """
class FeedForward:
    def __init__(self, d_model, d_ff):
        # d_model: dimension of the input and output (same as the input embedding dimension).
        # d_ff: dimension of the hidden layer in the feedforward network.
        # A weight matrix of shape `(d_model, d_ff)` initialized with random values.
        self.W1 = np.random.rand(d_model, d_ff)
        # A weight matrix of shape `(d_ff, d_model)` initialized with random values.
        self.W2 = np.random.rand(d_ff, d_model)
    def __call__(self, x):
        # `np.maximum(0, np.dot(x, self.W1))`: applies the ReLU activation function to introduce non-linearity.
        # `np.dot(np.maximum(0, np.dot(x, self.W1)), self.W2)`: projects the hidden layer back to the original dimension `d_model`.
        return np.dot(np.maximum(0, np.dot(x, self.W1)), self.W2)
"""

LAYER_NORM_CLASS = """
class LayerNorm:
    def __init__(self, d_model, eps=1e-6):
        self.eps = eps
        self.gamma = np.ones(d_model)
        self.beta = np.zeros(d_model)
    def __call__(self, x):
        mean = np.mean(x, axis=-1, keepdims=True)
        std = np.std(x, axis=-1, keepdims=True)
        return self.gamma * (x - mean) / (std + self.eps) + self.beta
"""

ENCODER = """
class EncoderLayer:
    def __init__(self, d_model, d_ff):
        self.self_attention = SelfAttention(d_model)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.layer_norm1 = LayerNorm(d_model)
        self.layer_norm2 = LayerNorm(d_model)
    def __call__(self, x):
        attn_output = self.self_attention(x)
        x = self.layer_norm1(x + attn_output)
        ff_output = self.feed_forward(x)
        x = self.layer_norm2(x + ff_output)
        return x
# Simple example input matrix (3 words with 4-dimensional embeddings)
input_matrix = np.array([[1.0, 0.5, 0.0, 0.2], [0.4, 0.7, 0.1, 0.8], [0.6, 0.1, 0.9, 0.3]])
d_model = 4 # Dimension of the input
d_ff = 8 # Dimension of the hidden layer in the feedforward network
encoder_layer = EncoderLayer(d_model, d_ff)
# Applying the EncoderLayer to the input matrix
output_matrix = encoder_layer(input_matrix)
print("Input Matrix:\\n", input_matrix)
print("Output Matrix after EncoderLayer:\\n", output_matrix)
"""

DECODER_CLASS = """
class DecoderLayer:
    def __init__(self, d_model, d_ff):
        self.self_attention = SelfAttention(d_model)
        self.enc_dec_attention = SelfAttention(d_model)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.layer_norm1 = LayerNorm(d_model)
        self.layer_norm2 = LayerNorm(d_model)
        self.layer_norm3 = LayerNorm(d_model)
    def __call__(self, x, enc_output):
        # Self-attention on the decoder's own input
        self_attn_output = self.self_attention(x)
        x = self.layer_norm1(x + self_attn_output)
        # Cross-attention with the encoder's output
        enc_dec_attn_output = self.enc_dec_attention(x)
        x = self.layer_norm2(x + enc_dec_attn_output)
        # Feedforward network
        ff_output = self.feed_forward(x)
        x = self.layer_norm3(x + ff_output)
        return x
"""

DECODER_EXAMPLE = "import numpy as np\n" + SELF_ATTENTION_CLASS + """
class FeedForward:
    def __init__(self, d_model, d_ff):
        self.W1 = np.random.rand(d_model, d_ff)
        self.W2 = np.random.rand(d_ff, d_model)
    def __call__(self, x):
        return np.dot(np.maximum(0, np.dot(x, self.W1)), self.W2)
""" + LAYER_NORM_CLASS + DECODER_CLASS + """
# Example input matrix (decoder's input)
decoder_input = np.array([[0.1, 0.2, 0.3, 0.4],
[0.5, 0.6, 0.7, 0.8],
[0.9, 1.0, 1.1, 1.2]])
# Example encoder output matrix
encoder_output = np.array([[1.0, 0.9, 0.8, 0.7],
[0.6, 0.5, 0.4, 0.3],
[0.2, 0.1, 0.0, -0.1]])
d_model = 4 # Dimensionality of the input
d_ff = 8 # Dimensionality of the hidden layer in the feedforward network
decoder_layer = DecoderLayer(d_model, d_ff)
output_matrix = decoder_layer(decoder_input, encoder_output)
print("Decoder Input Matrix:\\n", decoder_input)
print("Encoder Output Matrix:\\n", encoder_output)
print("Output Matrix after DecoderLayer:\\n", output_matrix)
"""


def _normalised_rows(matrix: np.ndarray) -> None:
    """LayerNorm with gamma 1 and beta 0 leaves each row with mean 0 and (biased) variance 1."""
    np.testing.assert_allclose(matrix.mean(axis=-1), 0.0, atol=1e-9)
    np.testing.assert_allclose(matrix.var(axis=-1), 1.0, atol=1e-4)


def test_softmax_prints_the_articles_numbers():
    printed, _ = run(SOFTMAX, NUMPY_REF)
    assert printed == "Input Vector: [1. 2. 3.]\nSoftmax Output: [0.09003057 0.24472847 0.66524096]\n"


def test_tokenize_prints_the_articles_tokens():
    printed, _ = run(TOKENIZE, NUMPY_REF)
    assert printed == ("Original Text: Hello, how are you doing today?\n"
                       "Tokens: ['Hello', ',', 'how', 'are', 'you', 'doing', 'today', '?']\n")


def test_one_hot_encode_prints_the_articles_vectors():
    printed, _ = run(ONE_HOT_ENCODE, NUMPY_REF)
    assert printed == ("One-hot vector for 'apple': [1, 0, 0, 0]\nOne-hot vector for 'orange': [0, 0, 1, 0]\n"
                       "One-hot vector for 'kiwi': [0, 0, 0, 0]\n")


def test_bpe_prints_the_articles_merges():
    assert "from glassformer.numpy_ref import byte_pair_encoding" in rewrite(BPE, NUMPY_REF)
    printed, _ = run(BPE, NUMPY_REF)
    assert printed == BPE_PRINTED


def test_attention_example_prints_the_articles_weights_and_output():
    printed, _ = run(ATTENTION_EXAMPLE, NUMPY_REF)
    weights_part, output_part = printed.split("Attention Weights:")[1].split("Output:")
    np.testing.assert_allclose(numbers(weights_part), [0.46831053, 0.06337894, 0.46831053, 0.4223188, 0.4223188,
                                                       0.1553624, 0.57611688, 0.21194156, 0.21194156], atol=1e-8)
    np.testing.assert_allclose(numbers(output_part), [4, 5, 6, 3.19913082, 4.19913082, 5.19913082, 2.90747402,
                                                      3.90747402, 4.90747402], atol=1e-8)


def test_positional_loop_block_gives_the_formula_not_the_doubled_exponent():
    """The article's loop doubles the exponent; ours is PE(pos, 2i) = sin(pos / 10000^(2i/d)), checked with math."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    printed, namespace = run(POSITIONAL_LOOP, NUMPY_REF)
    table = namespace["pos_encoding"]
    assert printed.startswith("Positional Encoding Matrix:") and table.shape == (10, 6)
    for pos in range(10):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert table[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-12)
            assert table[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-12)


def test_embedding_then_positions_print_the_articles_numbers_for_its_draw():
    printed, namespace = run(EMBEDDING, NUMPY_REF)
    assert printed.startswith("Input Indices: [0, 1, 2]\nEmbeddings:")
    assert namespace["embeddings"].shape == (3, 4)
    # The article's positional block, given the embeddings the article drew, prints the article's sums.
    namespace["embeddings"] = np.array(PRINTED_EMBEDDINGS)
    printed, namespace = run(POSITIONAL_CLASS, NUMPY_REF, namespace)
    assert "PositionalEncoding(d_model, max_len=5000)" in namespace["PositionalEncoding"].__doc__
    np.testing.assert_allclose(numbers(printed), np.ravel(PRINTED_WITH_POSITIONS), atol=2e-8)


def test_self_attention_runs_on_the_articles_input():
    printed, namespace = run("import numpy as np\n" + SELF_ATTENTION, NUMPY_REF)
    assert printed.startswith("Input Matrix:\n [[1 0 1 0]\n [0 1 0 1]\n [1 1 1 1]]\nOutput Matrix after Self-Attention:")
    assert namespace["output_matrix"].shape == (3, 4)


def test_feed_forward_and_layer_norm_definitions_are_glassformers():
    from glassformer import numpy_ref

    _, namespace = run("import numpy as np\n" + FEED_FORWARD_CLASS + LAYER_NORM_CLASS, NUMPY_REF)
    assert namespace["FeedForward"] is numpy_ref.FeedForward and namespace["LayerNorm"] is numpy_ref.LayerNorm
    x = np.array([[1.0, 2.0, 4.0, 7.0]])
    _normalised_rows(namespace["LayerNorm"](4)(x))
    assert namespace["FeedForward"](4, 8)(x).shape == (1, 4)


def test_encoder_layer_runs_as_the_article_calls_it():
    printed, namespace = run("import numpy as np\n" + ENCODER, NUMPY_REF)
    assert "Output Matrix after EncoderLayer:" in printed
    _normalised_rows(namespace["output_matrix"])


def test_decoder_example_runs_and_the_decoder_reads_the_encoder_output():
    """The article's decoder passes only x to its cross-attention; glassformer's (same call) reads enc_output."""
    printed, namespace = run(DECODER_EXAMPLE, NUMPY_REF)
    assert "Output Matrix after DecoderLayer:" in printed
    out = namespace["output_matrix"]
    _normalised_rows(out)
    layer = namespace["decoder_layer"]
    assert np.abs(layer(namespace["decoder_input"], namespace["encoder_output"] + 1.0) - out).max() > 1e-3
    assert "enc_output" in namespace["DecoderLayer"].__doc__ and "Pitfall" in namespace["DecoderLayer"].__doc__


def test_the_articles_old_argument_order_fails_loudly():
    from glassformer import numpy_ref

    with pytest.raises(TypeError):
        numpy_ref.EncoderLayer(8, 2, 16)  # torch's (d_model, n_heads, d_ff) is not the article's order
    with pytest.raises(TypeError):
        numpy_ref.DecoderLayer(8, 2, 16)
    layer = numpy_ref.EncoderLayer(8, 16, n_heads=2)
    assert layer.self_attn.n_heads == 2 and layer.ffn.W_1.shape == (8, 16)


# ----------------------------------------------------------------------------- first article (PyTorch)

ONE_HOT_TORCH_ARTICLE = """
vocab = {'files': 0, 'find': 1, 'my': 2}
import numpy as np

def one_hot(word, vocab):
    vec = np.zeros(len(vocab))
    vec[vocab[word]] = 1
    return vec

print(one_hot('find', vocab))  # [0, 1, 0]
print(one_hot('files', vocab))  # [1, 0, 0]
print(one_hot('my', vocab))  # [0, 0, 1]
a = one_hot('find', vocab)
b = np.array([0.2, 0.7, 0.8])
print(np.dot(a, b))  # 0.7
transition_probs = {
    'my': {'files': 0.3, 'photos': 0.5, 'directories': 0.2}
}
matrix = np.array([
    # files, photos, directories
    [0.3, 0.5, 0.2]
])
"""

EMBEDDING_TORCH = """
import torch
embedding = torch.nn.Embedding(num_embeddings=50000, embedding_dim=512)
word_ids = torch.LongTensor([1, 2, 0])
embedded = embedding(word_ids)
"""

POSITIONAL_TORCH = """
def positional_encoding(seq_len, d_model):
    pos = torch.arange(seq_len).unsqueeze(1)
    i = torch.arange(d_model).unsqueeze(0)
    angle_rates = 1 / torch.pow(10000, (2 * (i//2)) / d_model)
    angle_rads = pos * angle_rates

    pe = torch.zeros(seq_len, d_model)
    pe[:, 0::2] = torch.sin(angle_rads[:, 0::2])
    pe[:, 1::2] = torch.cos(angle_rads[:, 1::2])
    return pe
"""

ATTENTION_TORCH = """
def attention(Q, K, V, mask=None):
    d_k = Q.size(-1)
    scores = torch.matmul(Q, K.transpose(-2, -1)) / d_k**0.5
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    weights = torch.nn.functional.softmax(scores, dim=-1)
    return torch.matmul(weights, V)
"""

MULTI_HEAD_TORCH = """
class MultiHeadAttention(nn.Module):
    def __init__(self, heads, d_model):
        super().__init__()
        self.heads = heads
        self.d_k = d_model // heads

        self.q_linear = nn.Linear(d_model, d_model)
        self.k_linear = nn.Linear(d_model, d_model)
        self.v_linear = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, q, k, v):
        bs = q.size(0)

        # Linear projections
        Q = self.q_linear(q).view(bs, -1, self.heads, self.d_k).transpose(1,2)
        K = self.k_linear(k).view(bs, -1, self.heads, self.d_k).transpose(1,2)
        V = self.v_linear(v).view(bs, -1, self.heads, self.d_k).transpose(1,2)

        # Scaled dot-product attention
        scores = torch.matmul(Q, K.transpose(-2, -1)) / math.sqrt(self.d_k)
        weights = torch.nn.functional.softmax(scores, dim=-1)
        output = torch.matmul(weights, V)

        # Concatenate heads
        concat = output.transpose(1,2).contiguous().view(bs, -1, self.heads * self.d_k)
        return self.out(concat)
"""

FEED_FORWARD_TORCH = """
class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear(d_ff, d_model)

    def forward(self, x):
        return self.linear2(self.relu(self.linear1(x)))
"""

RESIDUAL_TORCH = """
x = x + self.dropout(self.ff(x))
x = self.norm(x)
"""

PATCHES_TORCH = """
def image_to_patches(img, patch_size=16):
    B, C, H, W = img.shape
    img = img.view(B, C, H//patch_size, patch_size, W//patch_size, patch_size)
    return img.permute(0,2,4,3,5,1).reshape(B, -1, patch_size*patch_size*C)
"""

GRADIO = """
import gradio as gr
from transformers import pipeline

pipe = pipeline("text-classification", model="./bert-finetuned")

def classify(text):
    return pipe(text)

demo = gr.Interface(fn=classify, inputs="text", outputs="label")
demo.launch(share=True)
"""

BERTVIZ = """
from bertviz import head_view
from transformers import BertModel, BertTokenizer

model = BertModel.from_pretrained("bert-base-uncased", output_attentions=True)
tokenizer = BertTokenizer.from_pretrained("bert-base-uncased")

text = "The dog chased the cat because it was fast."
inputs = tokenizer(text, return_tensors='pt')
outputs = model(**inputs)

# Launch attention head visualization
head_view(outputs.attentions, tokens=tokenizer.convert_ids_to_tokens(inputs['input_ids'][0]))
"""


def _reference(code: str, name: str):
    """The article's own definition, run as printed (with the imports its snippet takes for granted)."""
    namespace = {"torch": torch, "nn": nn, "math": math}
    exec(compile(code, "<article reference>", "exec"), namespace)
    return namespace[name]


def test_one_hot_dot_product_and_markov_blocks_print_the_articles_numbers():
    printed, _ = run(ONE_HOT_TORCH_ARTICLE, NUMPY_REF)
    assert printed == "[0. 1. 0.]\n[1. 0. 0.]\n[0. 0. 1.]\n0.7\n"


def test_embedding_block_runs():
    _, namespace = run(EMBEDDING_TORCH, TORCH_REF)
    assert namespace["embedded"].shape == (3, 512)


def test_positional_encoding_equals_the_articles_function():
    _, namespace = run("import torch\n" + POSITIONAL_TORCH, TORCH_REF)
    ours, theirs = namespace["positional_encoding"], _reference(POSITIONAL_TORCH, "positional_encoding")
    assert ours.__module__ == TORCH_REF
    for seq_len, d_model in ((50, 16), (7, 5)):
        torch.testing.assert_close(ours(seq_len, d_model), theirs(seq_len, d_model), atol=1e-5, rtol=0)


def test_attention_equals_the_articles_function():
    _, namespace = run("import torch\n" + ATTENTION_TORCH, TORCH_REF)
    ours, theirs = namespace["attention"], _reference(ATTENTION_TORCH, "attention")
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 5, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 3)
    mask = torch.ones(2, 5, 6, dtype=torch.long)
    mask[0, :, 4:] = 0
    torch.testing.assert_close(ours(q, k, v), theirs(q, k, v))
    torch.testing.assert_close(ours(q, k, v, mask), theirs(q, k, v, mask))
    mask[1, 2] = 0  # the article gives this query the average of every value; glassformer gives nothing
    assert torch.equal(ours(q, k, v, mask)[1, 2], torch.zeros(3))


def test_multi_head_attention_equals_the_articles_class_and_takes_a_mask():
    _, namespace = run("import torch\nfrom torch import nn\nimport math\n" + MULTI_HEAD_TORCH, TORCH_REF)
    torch.manual_seed(0)
    theirs = _reference(MULTI_HEAD_TORCH, "MultiHeadAttention")(4, 32)
    ours = namespace["MultiHeadAttention"](4, 32)
    ours.load_state_dict(theirs.state_dict())  # the article's layer names load as they are
    q, kv = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    torch.testing.assert_close(ours(q, kv, kv), theirs(q, kv, kv))
    keep = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    keep[0, ..., 5:] = False
    masked = ours(q, kv, kv, keep)
    torch.testing.assert_close(masked[1], theirs(q, kv, kv)[1])
    torch.testing.assert_close(masked[:1], theirs(q[:1], kv[:1, :5], kv[:1, :5]))


def test_feed_forward_is_glassformers_and_equals_the_articles():
    from glassformer.nn import FeedForward

    _, namespace = run("import torch\nfrom torch import nn\n" + FEED_FORWARD_TORCH, TORCH_REF)
    assert namespace["FeedForward"] is FeedForward
    torch.manual_seed(0)
    theirs = _reference(FEED_FORWARD_TORCH, "FeedForward")(8, 16)
    ours = namespace["FeedForward"](8, 16)
    ours.load_state_dict({"fc1.weight": theirs.linear1.weight, "fc1.bias": theirs.linear1.bias,
                          "fc2.weight": theirs.linear2.weight, "fc2.bias": theirs.linear2.bias})
    x = torch.randn(3, 4, 8)
    torch.testing.assert_close(ours(x), theirs(x))


def test_residual_fragment_is_glassformers_post_norm_sublayer():
    """The article's ``x = norm(x + dropout(ff(x)))`` on glassformer's EncoderLayer parts is that layer's second half."""
    from glassformer.nn import EncoderLayer

    torch.manual_seed(0)
    layer = EncoderLayer(8, 2, 16, dropout=0.0).eval()
    with torch.no_grad():  # silence the attention half, so the layer is norm2(y + ffn(y)) with y = norm1(x)
        layer.self_attn.out_proj.weight.zero_()
        layer.self_attn.out_proj.bias.zero_()
    x = torch.randn(2, 5, 8)
    expected, _ = layer(x)
    holder = types.SimpleNamespace(ff=layer.ffn, dropout=layer.dropout2, norm=layer.norm2)
    _, namespace = run(RESIDUAL_TORCH, TORCH_REF, {"self": holder, "x": layer.norm1(x)})
    torch.testing.assert_close(namespace["x"], expected)


def test_image_to_patches_equals_the_articles_function():
    _, namespace = run("import torch\n" + PATCHES_TORCH, TORCH_REF)
    ours, theirs = namespace["image_to_patches"], _reference(PATCHES_TORCH, "image_to_patches")
    images = torch.randn(2, 3, 32, 48)
    torch.testing.assert_close(ours(images), theirs(images))
    torch.testing.assert_close(ours(images, 8), theirs(images, 8))
    with pytest.raises(ValueError, match="not divisible by patch_size=16"):
        ours(torch.zeros(1, 3, 20, 32))


@pytest.fixture
def bert_finetuned(tmp_path, monkeypatch):
    """``./bert-finetuned``: a small sentiment model saved by glassformer, in the working directory."""
    from glassformer.models import EncoderClassifier, EncoderConfig
    from glassformer.tokenizers import WordPiece
    from glassformer.training.saved import save_model

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz.,!"]
    torch.manual_seed(0)
    model = EncoderClassifier(EncoderConfig(vocab_size=len(vocab), max_position=64, d_model=16, n_heads=2,
                                            n_layers=1, d_ff=32, pooling="cls"))
    save_model(tmp_path / "bert-finetuned", model, task="sentiment", label_names=["NEGATIVE", "POSITIVE"],
               tokenizer=WordPiece(vocab), extra={"max_length": 64})
    monkeypatch.chdir(tmp_path)


def test_gradio_block_classifies_with_glassformers_pipeline(bert_finetuned, monkeypatch):
    """The article's demo, with a stand-in for gradio that records the app instead of serving it."""
    recorded = {}

    class Interface:
        def __init__(self, fn, inputs, outputs):
            recorded.update(fn=fn, inputs=inputs, outputs=outputs)

        def launch(self, **options):
            recorded["launch"] = options

    monkeypatch.setitem(sys.modules, "gradio", types.SimpleNamespace(Interface=Interface))
    assert "from glassformer import pipeline" in rewrite(GRADIO, TORCH_REF)
    run(GRADIO, TORCH_REF)
    assert recorded["launch"] == {"share": True}
    result = recorded["fn"]("a fine film.")
    assert isinstance(result, list) and len(result) == 1  # transformers' shape for one text
    assert set(result[0]) == {"label", "score"} and result[0]["label"] in ("NEGATIVE", "POSITIVE")


def test_bertviz_block_draws_with_glassformers_head_view(monkeypatch):
    """The article's BertViz call with glassformer's head_view; the cached MiniLM stands in for bert-base-uncased,
    the only BERT available offline."""
    pytest.importorskip("transformers")
    from glassformer.data import SourceError, fetch
    from glassformer.viz import embedded_data

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        minilm = str(fetch("minilm", quiet=True))
    except SourceError as exc:
        pytest.skip(f"MiniLM checkpoint not available: {exc}")
    code = rewrite(BERTVIZ, TORCH_REF).replace("'bert-base-uncased'", repr(minilm))
    assert "from glassformer.viz import head_view" in code
    tree = ast.parse(code)
    tree.body[-1] = ast.parse("page = " + ast.unparse(tree.body[-1])).body[0]  # keep what the notebook would show
    namespace: dict = {}
    exec(compile(tree, "<article block>", "exec"), namespace)
    page = embedded_data(namespace["page"])
    tokens = ["[CLS]", "the", "dog", "chased", "the", "cat", "because", "it", "was", "fast", ".", "[SEP]"]
    assert page["views"][0]["query_tokens"] == tokens
    expected = torch.stack([a[0] for a in namespace["outputs"].attentions]).detach().numpy()
    np.testing.assert_allclose(page["views"][0]["weights"], expected, atol=6e-5)
