"""A small stand-in for a language model, shared by the Gemini and OpenAI-compatible doubles.

Real models cannot be reached from the test machines, so the doubles can answer with this instead of a fixed
answer: a few regular expressions read the customer's messages and fill the same JSON the real models return.
It is no model of quality: it exists so that the evaluation (crmbridgectl eval) runs the whole path of each
provider, the request, the answer, the schema checks, grounding and the policy, on the evaluation set and
gives the same figures through both protocols. A voice note or image is "understood" through a registry the
test fills: the SHA-256 of the media's bytes -> what it says.
"""

import hashlib
import re

FIELDS = ["name", "email", "phone", "city", "product_interest", "budget_range", "urgency", "specific_need"]
PRODUCTS = ["sofá cama", "sofá", "sofa", "comedor", "mesa", "sillas", "silla", "cama", "colchón", "escritorio",
            "armario", "closet", "dining table", "table", "chair", "bed", "mattress", "desk", "wardrobe",
            "sofá de 3 puestos", "juego de sala", "sala", "poltrona"]
SUPPORT = ["garantía", "reclamo", "no ha llegado", "no llega", "devolución", "devolver", "reembolso", "roto",
           "dañado", "pedido", "refund", "damaged", "broken", "where is my order", "warranty", "complaint"]
HUMAN = ["persona", "humano", "asesor", "agente", "human", "real person", "someone"]
SPANISH = re.compile(r"\b(hola|quiero|busco|necesito|soy|para|presupuesto|gracias|buenos|mi|el|la|de|un|una)\b", re.I)

# sha256 hex of media bytes -> the words it carries (set by the tests through the doubles' /_control "media").
MEDIA = {}


def media_text(data):
    return MEDIA.get(hashlib.sha256(data).hexdigest())


def _first(pattern, text, group=1, flags=re.I):
    m = re.search(pattern, text, flags)
    return m.group(group).strip() if m else None


def analyse(user_texts, media_words=None):
    """user_texts: the customer's messages in order. media_words: what the last message's media says, or None.
    Returns the analysis object of the response schema."""
    texts = list(user_texts)
    if media_words:
        texts.append(media_words)
    text = "\n".join(texts)
    low = text.lower()
    f = {k: None for k in FIELDS}
    f["email"] = _first(r"([\w.+-]+@[\w-]+\.[\w.]+)", text)
    f["phone"] = _first(r"(\+?\d[\d \-]{8,}\d)", text)
    f["name"] = _first(r"\b(?:soy|me llamo|mi nombre es|my name is|i am|i'm)\s+([A-ZÁÉÍÓÚÑ][a-záéíóúñ]+"
                       r"(?:\s+[A-ZÁÉÍÓÚÑ][a-záéíóúñ]+)?)", text, flags=0)
    f["city"] = _first(r"\b(?:en|de|desde|in|from)\s+(Bogotá|Medellín|Cali|Barranquilla|Madrid|Barcelona|"
                       r"Lima|Quito|Ciudad de México|Guadalajara|Miami|Austin)\b", text)
    f["budget_range"] = _first(r"((?:\$|€|USD\s?|EUR\s?)\s?\d[\d.,]*\d(?:\s?(?:mil|k|millones))?|"
                               r"\d[\d.,]*\s?(?:mil|millones|euros|dólares|dolares|pesos|USD|EUR))", text)
    for p in sorted(PRODUCTS, key=len, reverse=True):
        m = re.search(r"\b" + re.escape(p) + r"\b", text, re.I)
        if m:
            f["product_interest"] = m.group(0)
            break
    if re.search(r"\b(urgente|hoy|mañana|esta semana|asap|urgent|this week|tomorrow)\b", low):
        f["urgency"] = _first(r"\b(urgente|hoy|mañana|esta semana|asap|urgent|this week|tomorrow)\b", text)
    human = any(re.search(r"\b" + re.escape(w) + r"\b", low) for w in HUMAN)
    support = human or any(w in low for w in SUPPORT)
    contact = f["name"] or f["email"] or f["phone"]
    if support:
        quality, intent, action = "cold", "support", "transfer_to_support"
    elif contact and f["product_interest"] and (f["budget_range"] or f["urgency"]):
        quality, intent, action = "hot", "sales", "create_lead"
    elif f["product_interest"]:
        quality, intent, action = "warm", "sales", "request_contact_info" if not contact else "gather_more_details"
    elif contact:
        quality, intent, action = "warm", "sales", "ask_about_interest"
    else:
        quality, intent, action = "cold", "other", "ask_about_interest"
    lang = "es" if SPANISH.search(text) or re.search(r"[ñáéíóú¿¡]", low) else "en"
    missing = [k for k in ("name", "product_interest", "budget_range") if not f[k]]
    ask = {"es": {"name": "¿Me dices tu nombre?", "product_interest": "¿Qué mueble estás buscando?",
                  "budget_range": "¿Qué presupuesto tienes en mente?"},
           "en": {"name": "May I have your name?", "product_interest": "Which piece of furniture are you after?",
                  "budget_range": "What budget do you have in mind?"}}[lang]
    reply = ask[missing[0]] if missing else ("¡Gracias! Un asesor te escribirá pronto." if lang == "es"
                                             else "Thank you! An adviser will write to you soon.")
    return {"quality": quality, "confidence": 0.8 if quality == "hot" else 0.6, "intent": intent,
            "reason": "human" if human else ("complaint" if support else ("purchase" if intent == "sales"
                                                                           else "greeting")),
            "sentiment": 0.0, "fields": f, "missing": missing, "action": action, "reply": reply,
            "language": lang, "reasoning": "Toy model: %s." % ", ".join(k for k in FIELDS if f[k]) or "nothing",
            "transcript": media_words}
