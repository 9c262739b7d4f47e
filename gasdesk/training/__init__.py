"""Training (智能培训): learning materials, question banks and timed exams, and AI sparring (AI陪练)."""
